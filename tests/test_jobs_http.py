"""Training, reindexing and comparing as HTTP jobs: id, progress, result, and a restart in
between; then the same through the typed client's transport."""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pixseek.api import ServeSettings, create_app
from pixseek.api.background import JOBS_DIR
from pixseek.collection.collection import open_collection
from tests.test_loop import QUERIES, judged  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow
ADMIN = {"Authorization": "Bearer s3cret"}


def wait(client: TestClient, job_id: str, timeout: float = 300) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/jobs/{job_id}", headers=ADMIN).json()
        if job["state"] in ("done", "failed") or time.monotonic() > deadline:
            return job  # type: ignore[no-any-return]
        time.sleep(0.2)


def test_the_loop_as_jobs_that_survive_a_restart(judged, tiny_model, capsys) -> None:  # noqa: F811
    root = judged.parent / "served"
    root.mkdir()
    judged.rename(root / "shapes")
    settings = ServeSettings(root=root, runtime="torch", model=str(tiny_model), api_key="s3cret")
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    body = {"kind": "train", "epochs": 15, "lr": 3e-3, "batch_size": 32}
    started = client.post("/collections/shapes/jobs", json=body, headers=ADMIN)
    assert started.status_code == 202, started.text
    trained = wait(client, started.json()["id"])
    assert trained["state"] == "done", trained
    assert trained["progress"] == 1.0 and trained["result"]["hard_negatives"] > 0
    model = f"job:{trained['id']}"
    built = wait(
        client,
        client.post(
            "/collections/shapes/jobs", json={"kind": "reindex", "model": model}, headers=ADMIN
        ).json()["id"],
    )
    assert built["state"] == "done" and built["result"]["activated"] is False, built
    # calibrated as `pixseek reindex` calibrates it (the job left it without)
    assert built["result"]["calibrated"] == [built["result"]["index"]], built

    # a new server on the same root: finished jobs keep their results; queued ones run
    again = TestClient(create_app(settings), raise_server_exceptions=False)
    assert again.get(f"/jobs/{trained['id']}", headers=ADMIN).json() == trained
    pending = {
        "id": "pending00001",
        "kind": "compare",
        "collection": "shapes",
        "state": "running",
        "progress": 0.5,
        "params": {"index": "", "activate_if_better": True},
    }
    (root / JOBS_DIR / "pending00001.json").write_text(json.dumps(pending))
    third = TestClient(create_app(settings), raise_server_exceptions=False)
    compared = wait(third, "pending00001")
    assert compared["state"] == "done", compared
    result = compared["result"]
    assert result["shadow"]["feedback"]["ndcg_at_10"] > result["active"]["feedback"]["ndcg_at_10"]
    assert (
        result["activated"]
        and open_collection(root / "shapes").default_index == built["result"]["index"]
    )
    assert [j["id"] for j in third.get("/jobs", headers=ADMIN).json()][-1] == "pending00001"

    bad = third.post(
        "/collections/shapes/jobs", json={"kind": "reindex", "model": "/etc"}, headers=ADMIN
    )
    assert bad.status_code == 422
    assert (
        third.post("/collections/nope/jobs", json={"kind": "compare"}, headers=ADMIN).status_code
        == 404
    )
    # a model from a job that is not there: refused at once (it was a job that then failed)
    unknown = third.post(
        "/collections/shapes/jobs", json={"kind": "reindex", "model": "job:nope"}, headers=ADMIN
    )
    assert unknown.status_code == 404 and "nope" in unknown.text, unknown.text
    # labels alone train on labels, as `pixseek train --labels` (judgements were on too)
    labelled = {"kind": "train", "labels": True, "epochs": 1, "batch_size": 32}
    labels_only = third.post("/collections/shapes/jobs", json=labelled, headers=ADMIN).json()
    assert labels_only["params"]["from_feedback"] is False, labels_only
    assert wait(third, labels_only["id"])["state"] == "done"
    # a compare job on the labels (its message asked for labels the job did not take)
    on_labels = {"kind": "compare", "labels": True}
    compared_on_labels = third.post("/collections/shapes/jobs", json=on_labels, headers=ADMIN)
    assert compared_on_labels.status_code == 202, compared_on_labels.text
    done_on_labels = wait(third, compared_on_labels.json()["id"])
    assert done_on_labels["state"] == "done", done_on_labels
    assert done_on_labels["result"]["active"]["truth"]["zero_shot_accuracy"] is not None


def test_copy_training_as_a_job(tmp_path, tiny_model, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``mode: copy`` trains the image tower on the collection's images alone (stored
    judgements are not asked for); texts with it, an unknown device or one the server lacks
    are refused before a job starts."""
    import torch

    from pixseek.cli import main
    from tests.test_jobs import scene

    root = tmp_path / "served"
    for seed in range(10):
        (tmp_path / "photos").mkdir(exist_ok=True)
        scene(seed, (128, 96)).save(tmp_path / "photos" / f"scene{seed}.png")
    index = ["index", str(tmp_path / "photos"), "--collection", str(root / "photos")]
    assert main([*index, "--model", str(tiny_model), "--runtime", "torch", "--quiet"]) == 0
    settings = ServeSettings(root=root, runtime="torch", model=str(tiny_model), api_key="s3cret")
    client = TestClient(create_app(settings), raise_server_exceptions=False)

    def start(**body: object):  # type: ignore[no-untyped-def]
        body = {"kind": "train", **body}
        return client.post("/collections/photos/jobs", json=body, headers=ADMIN)

    for texts, named in [
        ({"labels": True}, "labels"),
        ({"from_feedback": True}, "from_feedback"),
        ({"labels": True, "from_feedback": True}, "labels and from_feedback"),
    ]:
        refused = start(mode="copy", **texts)
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"] == (
            f"mode 'copy' trains on the collection's images alone: drop {named}"
        )
    assert start(mode="copy", device="tpu").status_code == 422
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    no_gpu = start(mode="copy", device="cuda")
    assert no_gpu.status_code == 422 and "device 'cuda' is not available" in no_gpu.json()["detail"]
    assert client.get("/jobs", headers=ADMIN).json() == []

    started = start(mode="copy", epochs=2, batch_size=4, device="cpu", from_feedback=False)
    assert started.status_code == 202, started.text
    assert started.json()["params"]["from_feedback"] is False
    assert started.json()["params"]["device"] == "cpu"
    done = wait(client, started.json()["id"])
    assert done["state"] == "done", done
    result = done["result"]
    assert result["train_images"] == 8 and 0 <= result["copy_top_1"] <= 1
    assert result["best_epoch"] in (1, 2)
    assert (Path(result["model"]) / "model.safetensors").is_file()


def test_views_as_a_job(tmp_path, tiny_model) -> None:  # type: ignore[no-untyped-def]
    """The views duplicates and match compare, made in the background with a progress, then
    used by a duplicates request that embeds nothing; an upload has its image's views made
    by a views job of its own. The views job also measures match's levels with the views
    (jobs.false_alarms), which the next match request would otherwise measure."""
    from pixseek.cli import main
    from tests.test_jobs import scene

    root = tmp_path / "served"
    (tmp_path / "photos").mkdir()
    for seed in range(6):  # enough images to calibrate copy detection
        scene(seed, (96, 72)).save(tmp_path / "photos" / f"scene{seed}.png")
    index = ["index", str(tmp_path / "photos"), "--collection", str(root / "photos")]
    assert main([*index, "--model", str(tiny_model), "--runtime", "torch", "--quiet"]) == 0
    settings = ServeSettings(root=root, runtime="torch", model=str(tiny_model), api_key="s3cret")
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    # a match request makes no views inside the request: it says they are missing
    picture = scene(9, (64, 64)).crop((0, 0, 40, 40))
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    query = {"image": base64.b64encode(buffer.getvalue()).decode(), "threshold": 0.9999}
    before = client.post("/collections/photos/match", json=query, headers=ADMIN)
    assert before.status_code == 200 and before.json()["views"] == "missing", before.text
    assert not (root / "photos" / "views").exists()
    # a field a views job does not use is refused, not ignored
    stray = {"kind": "views", "epochs": 3}
    refused = client.post("/collections/photos/jobs", json=stray, headers=ADMIN)
    assert refused.status_code == 422 and "does not take epochs" in refused.text, refused.text
    started = client.post("/collections/photos/jobs", json={"kind": "views"}, headers=ADMIN)
    assert started.status_code == 202, started.text
    done = wait(client, started.json()["id"])
    assert done["state"] == "done" and done["progress"] == 1.0, done
    made = list(done["result"]["indexes"].values())
    assert made == [{"images": 6, "embedded": 6, "unreadable": 0}], done
    shown = client.get("/collections/photos/indexes", headers=ADMIN).json()
    levels = shown["indexes"][0]["calibration"]["false_alarms"]
    assert [level["views"] for level in levels] == [False, True], levels
    # kept: a duplicates request compares them all and embeds none (the file is not rewritten)
    kept = next((root / "photos" / "views").glob("*.npz"))
    written = kept.stat().st_mtime_ns
    found = client.get(
        "/collections/photos/duplicates", params={"threshold": 0.999}, headers=ADMIN
    ).json()
    assert found["views"] == 6 and kept.stat().st_mtime_ns == written
    after = client.post("/collections/photos/match", json=query, headers=ADMIN).json()
    assert after["views"] == "kept" and kept.stat().st_mtime_ns == written
    # an upload to a collection that keeps views: a views job makes the new image's
    upload = {"images": [{"data": query["image"], "filename": "crop.png"}]}
    added = client.post("/collections/photos/images", json=upload, headers=ADMIN)
    assert added.status_code == 200, added.text
    jobs = client.get("/jobs", headers=ADMIN).json()
    follow = [j for j in jobs if j["kind"] == "views" and j["id"] != done["id"]]
    assert len(follow) == 1, jobs
    refreshed = wait(client, follow[0]["id"])
    made = list(refreshed["result"]["indexes"].values())
    assert made == [{"images": 7, "embedded": 1, "unreadable": 0}], refreshed
