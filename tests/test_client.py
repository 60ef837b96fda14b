"""The typed client against a live server: the same calls through the library and
through ``pixseek.client`` give the same results; judgements survive a restart."""

from __future__ import annotations

import json

import pytest

from pixseek.cli import main
from pixseek.client import ClientError, PixseekClient
from pixseek.collection.collection import open_collection
from pixseek.core.errors import InvalidInputError, NotFoundError
from pixseek.core.filters import Filter
from pixseek.core.query import Feedback, ImageQuery, RecordQuery, RegionQuery, SearchOptions, Term
from pixseek.core.records import record_dict
from pixseek.search import search
from tests.conftest import make_image
from tests.serving import running_server

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 200, 40),
    "blue": (20, 40, 220),
    "yellow": (230, 220, 30),
    "grey": (128, 128, 128),
}


def same_hits(library, remote) -> None:  # type: ignore[no-untyped-def]
    assert [h.id for h in remote] == [h.id for h in library]
    assert [h.score for h in remote] == pytest.approx([h.score for h in library], abs=1e-5)
    assert [record_dict(h.record) for h in remote] == [record_dict(h.record) for h in library]


@pytest.mark.slow
def test_the_client_and_the_library_agree(tmp_path, tiny_model, capsys) -> None:
    root = tmp_path / "root"
    files = [make_image(tmp_path / "in" / f"{n}.png", c) for n, c in COLOURS.items()]
    serve_args = ("--model", str(tiny_model), "--runtime", "torch", "--api-key", "s3cret")
    with running_server(root, *serve_args) as url, PixseekClient(url, api_key="s3cret") as client:
        created = client.create_collection("pets")
        assert created.images == 0 and client.collections() == [created]
        ids = client.add_images("pets", files)
        library = open_collection(root / "pets")
        queries = [
            ("a red square", SearchOptions(k=3)),
            ([Term(RecordQuery(ids[0])), "-grey"], SearchOptions(k=4, kind="image")),
            ("x", SearchOptions(k=5, feedback=Feedback((ids[1],), (ids[2],)))),
            ("x", SearchOptions(k=5, where=Filter.where({"id": ids[:3]}))),
            (Term(ImageQuery(files[3].read_bytes())), SearchOptions(k=2)),
            (Term(RegionQuery(ids[4], (4, 4, 30, 30))), SearchOptions(k=2)),
        ]
        for query, options in queries:
            same_hits(search(library, query, options), client.search("pets", query, options))
        assert record_dict(client.get("pets", ids[2])) == record_dict(library.get(ids[2]))
        assert client.collection("pets").images == library.info().images == 5
        with pytest.raises(NotFoundError):
            client.search("nope", "a cat")
        with pytest.raises(InvalidInputError):
            client.search("pets", "x", SearchOptions(where=Filter.parse("label!=dog")))

        client.search("pets", "red", SearchOptions(feedback=Feedback((ids[0],))), remember=True)
        judged = client.judge("pets", RecordQuery(ids[1]), ids[3], -1)
        assert (judged.query_kind, judged.query, judged.value) == ("record", ids[1], -1)
        assert main(["keys", "create", "--root", str(root), "--role", "search", "--json"]) == 0
        token = json.loads(capsys.readouterr().out)["token"]
        with PixseekClient(url, api_key=token) as limited:
            two = SearchOptions(k=2)
            same_hits(search(library, "red", two), limited.search("pets", "red", two))
            limited.judge("pets", "a red square", ids[0], 1)
            with pytest.raises(ClientError) as refused:
                limited.remove_image("pets", ids[0])
            assert refused.value.status == 403
            with pytest.raises(ClientError):
                limited.feedback("pets")
        job = client.wait(client.start_job("pets", "compare").id)  # one index: nothing to compare
        assert job.state == "failed" and "one index" in job.error and client.jobs() == [job]
        before = client.feedback("pets")
    assert [(j.query, j.result_id, j.value) for j in before] == [
        ("red", ids[0], 1),
        (ids[1], ids[3], -1),
        ("a red square", ids[0], 1),
    ]
    assert before[2].key_id == token.split("_")[1]
    # a restarted server still has every judgement
    with running_server(root, *serve_args) as url, PixseekClient(url, api_key="s3cret") as client:
        assert client.feedback("pets") == before
        client.remove_image("pets", ids[0])
        assert [j.result_id for j in client.feedback("pets")] == [ids[3]]
