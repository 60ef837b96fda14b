"""HTTP defects found as an attacker and a new user: each test failed before its fix."""

from __future__ import annotations

import concurrent.futures
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pixseek.api import ServeSettings, create_app
from pixseek.collection.collection import open_collection
from tests.conftest import make_image
from tests.serving import running_server
from tests.test_api import b64, png


@pytest.fixture()
def settings(tmp_path, tiny_model) -> ServeSettings:
    return ServeSettings(
        root=tmp_path / "root", runtime="torch", model=str(tiny_model), max_upload_bytes=200_000
    )


def client_for(settings: ServeSettings, host: str = "localhost") -> TestClient:
    return TestClient(
        create_app(settings), raise_server_exceptions=False, base_url=f"http://{host}"
    )


@pytest.fixture()
def client(settings) -> TestClient:
    return client_for(settings)


def upload(client: TestClient, name: str, *colours: tuple[int, int, int]) -> list[str]:
    """Images of these colours, labelled by their colour (classify votes with labels)."""
    body = {"images": [{"data": b64(png(c)), "metadata": {"label": f"rgb{c}"}} for c in colours]}
    response = client.post(f"/collections/{name}/images", json=body)
    assert response.status_code == 200, response.text
    return response.json()["ids"]  # type: ignore[no-any-return]


def test_delete_during_uploads_is_atomic(client, settings) -> None:
    assert client.post("/collections", json={"name": "race"}).status_code == 201
    upload(client, "race", (1, 2, 3))
    statuses: list[int] = []

    def keep_uploading(start: int) -> None:
        for i in range(start, start + 15):
            body = {"images": [{"data": b64(png((i % 255, 9, 9)))}]}
            statuses.append(client.post("/collections/race/images", json=body).status_code)

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(keep_uploading, i * 20) for i in range(3)]
        time.sleep(0.3)
        deleted = client.delete("/collections/race")
        for future in futures:
            future.result()
    assert deleted.status_code == 204
    assert set(statuses) <= {200, 404, 409}, statuses
    assert statuses[-1] == 404  # once deleted, uploads find nothing
    assert (
        client.post(
            "/collections/race/images", json={"images": [{"data": b64(png((5, 5, 5)))}]}
        ).status_code
        == 404
    )
    assert not (settings.root / "race" / "pixseek.json").exists()
    assert not [p for p in settings.root.iterdir() if p.name.startswith(".deleting-")]
    assert client.post("/collections", json={"name": "race"}).status_code == 201
    assert client.get("/collections/race").json()["images"] == 0  # nothing resurrected


def test_the_server_sees_writes_of_another_process(client, settings, tmp_path, tiny_model) -> None:
    assert client.post("/collections", json={"name": "shared"}).status_code == 201
    upload(client, "shared", (10, 20, 30))
    assert client.get("/collections/shared").json()["images"] == 1
    folder = tmp_path / "more"
    for i in range(5):
        make_image(folder / f"{i}.png", (40 * i, 100, 100))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "pixseek.cli", "index", str(folder), "--quiet"]
    command += ["--collection", str(settings.root / "shared")]
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=300)
    deadline = time.monotonic() + 5
    while client.get("/collections/shared").json()["images"] != 6:
        assert time.monotonic() < deadline, "the server did not see the CLI's writes"
        time.sleep(0.2)
    hits = client.post("/collections/shared/search", json={"text": "x", "k": 10}).json()["hits"]
    assert len(hits) == 6


def test_chunked_bodies_over_the_limit_are_refused(client) -> None:
    assert client.post("/collections", json={"name": "c"}).status_code == 201
    sent = 0

    def chunks():  # type: ignore[no-untyped-def]
        nonlocal sent
        for _ in range(200):  # 200 x 64 KiB = 12.5 MiB, no Content-Length
            sent += 1
            yield b"x" * 65536

    response = client.post(
        "/collections/c/images", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert "limit" in response.json()["detail"]


def test_huge_text_queries_are_refused_before_tokenising(client) -> None:
    assert client.post("/collections", json={"name": "c"}).status_code == 201
    upload(client, "c", (1, 2, 3))
    response = client.post("/collections/c/search", json={"text": "a" * 5000})
    assert response.status_code == 422 and "1000" in response.text


@pytest.mark.parametrize(
    "raw",
    [
        '{"text": "x", "weight": Infinity}',
        '{"text": "x", "min_score": NaN}',
        '{"text": "x", "feedback_weights": {"beta": Infinity}}',
        '{"image_id": "x", "box": [0, 0, Infinity, 1]}',
    ],
)
def test_non_finite_numbers_are_422(client, raw) -> None:
    assert client.post("/collections", json={"name": "c"}).status_code == 201
    response = client.post(
        "/collections/c/search", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text


def test_names_are_matched_whole_and_bad_folders_never_break_listing(client, settings) -> None:
    assert client.post("/collections", json={"name": "evil\n"}).status_code == 422
    assert client.post("/collections", json={"name": "good"}).status_code == 201
    broken = settings.root / "broken"
    broken.mkdir()
    (broken / "pixseek.json").write_text("{not json")
    (settings.root / "bad\nname").mkdir()
    (settings.root / "bad\nname" / "pixseek.json").write_text("{}")
    listed = client.get("/collections")
    assert listed.status_code == 200
    assert [c["name"] for c in listed.json()] == ["good"]


def test_host_header_and_cross_origin_writes(settings) -> None:
    rebound = client_for(settings, host="attacker.example")
    assert rebound.get("/collections").status_code == 421
    local = client_for(settings)
    assert local.get("/collections").status_code == 200
    cross = local.post(
        "/collections", json={"name": "x"}, headers={"Origin": "http://attacker.example"}
    )
    assert cross.status_code == 403
    same = local.post("/collections", json={"name": "x"}, headers={"Origin": "http://localhost"})
    assert same.status_code == 201
    settings.api_key = "k"
    keyed = client_for(settings, host="pixseek.example.org")
    auth = {"Authorization": "Bearer k"}
    assert keyed.get("/collections", headers=auth).status_code == 200


def test_serving_everyone_without_a_key_warns(tmp_path, monkeypatch, capsys) -> None:
    import uvicorn

    from pixseek.cli.main import main

    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
    assert main(["serve", "--root", str(tmp_path), "--host", "0.0.0.0"]) == 0
    assert "WARNING" in capsys.readouterr().err
    assert main(["serve", "--root", str(tmp_path), "--host", "0.0.0.0", "--api-key", "k"]) == 0
    assert "WARNING" not in capsys.readouterr().err


def test_clients_cannot_load_models_from_server_paths(settings, tiny_model, tmp_path) -> None:
    client = client_for(settings)
    answers = [
        client.post("/collections", json={"name": f"m{i}", "model": m})
        for i, m in enumerate(["/etc", "/no/such/dir", "../../etc", str(tiny_model), "~"])
    ]
    assert [a.status_code for a in answers] == [422] * 5
    assert len({a.json()["detail"].split("'")[2] for a in answers}) == 1  # the same words
    models = tmp_path / "models"
    shutil.copytree(tiny_model, models / "tiny")
    settings.models_root = models
    allowed = client_for(settings).post("/collections", json={"name": "ok", "model": "tiny"})
    assert allowed.status_code == 201, allowed.text
    assert allowed.json()["model"] == str((models / "tiny").resolve())


def test_label_filter_finds_images_by_their_objects(client) -> None:
    assert client.post("/collections", json={"name": "c"}).status_code == 201
    body = {
        "images": [
            {"data": b64(png((200, 1, 1))), "boxes": [{"box": [1, 1, 20, 20], "label": "dog"}]},
            {"data": b64(png((1, 200, 1))), "metadata": {"label": "dog"}},
            {"data": b64(png((1, 1, 200)))},
        ]
    }
    ids = client.post("/collections/c/images", json=body).json()["ids"]
    page = client.get("/collections/c/images", params={"label": "dog"}).json()
    assert page["total"] == 2 and {r["id"] for r in page["records"]} == set(ids[:2])
    assert client.get("/collections/c/images", params={"label": "cat"}).json()["total"] == 0


def test_a_delete_waiting_for_a_writer_never_stalls_other_collections(client, settings) -> None:
    for name in ("a", "b"):
        assert client.post("/collections", json={"name": name}).status_code == 201
        upload(client, name, (1, 2, 3))
    writer = open_collection(settings.root / "a")  # another writer, as a CLI run would be
    with concurrent.futures.ThreadPoolExecutor(4) as pool:

        def call(method: str, url: str, **kwargs):  # type: ignore[no-untyped-def]
            # a guard against hanging forever, not a timing assertion
            return pool.submit(client.request, method, url, **kwargs).result(timeout=120)

        with writer.writing():
            deleting = pool.submit(client.delete, "/collections/a")
            # once its deletion has begun, "a" is gone for new requests
            while call("GET", "/collections/a").status_code != 404:
                assert not deleting.done(), deleting.result().text
                time.sleep(0.05)
            other = call("POST", "/collections/b/search", json={"text": "x"})
            listed = call("GET", "/collections")
            assert not deleting.done()  # still waiting for the writer
        assert deleting.result().status_code == 204
    assert other.status_code == 200 and len(other.json()["hits"]) == 1
    assert listed.status_code == 200 and [c["name"] for c in listed.json()] == ["b"]
    assert client.get("/collections/a").status_code == 404
    for i in range(20):
        assert client.get(f"/collections/unknown{i}").status_code == 404
    # deleted and unknown names leave no state behind in the server
    assert set(client.app.state.workspace._slots) == {"b"}  # type: ignore[attr-defined]


def test_searches_racing_a_delete_get_a_whole_answer_or_404(client) -> None:
    assert client.post("/collections", json={"name": "race"}).status_code == 201
    upload(client, "race", *[(i * 40, 9, 9) for i in range(6)])
    statuses: list[int] = []
    searching = threading.Event()

    def keep_searching() -> None:
        for _ in range(500):
            response = client.post("/collections/race/search", json={"text": "x", "k": 6})
            statuses.append(response.status_code)
            if response.status_code == 200:
                assert len(response.json()["hits"]) == 6
            searching.set()
            if response.status_code != 200:
                return

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        futures = [pool.submit(keep_searching) for _ in range(10)]
        assert searching.wait(120)
        deleted = client.delete("/collections/race")
        for future in futures:
            future.result()  # a dropped connection raises here
    assert deleted.status_code == 204
    assert set(statuses) == {200, 404}, sorted(set(statuses))


class CountingSlots:
    """The server's decode slots, counting how often a request takes one."""

    def __init__(self, slots: threading.BoundedSemaphore) -> None:
        self.slots = slots
        self.taken = 0

    def __enter__(self) -> None:
        self.slots.acquire()
        self.taken += 1

    def __exit__(self, *exc: object) -> None:
        self.slots.release()


def sixteen_bit_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("I;16", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def test_every_route_that_decodes_an_image_takes_a_decode_slot(client) -> None:
    assert client.post("/collections", json={"name": "c"}).status_code == 201
    upload(client, "c", (200, 10, 10), (10, 200, 10))
    slots = CountingSlots(client.app.state.decode_slots)  # type: ignore[attr-defined]
    client.app.state.decode_slots = slots  # type: ignore[attr-defined]
    image = b64(png((200, 10, 10)))
    taken = []
    for url, body, status in [
        ("search", {"text": "x"}, 200),
        ("search", {"image": image}, 200),
        ("search", {"text": "x", "negatives": [{"image": image}]}, 200),
        ("match", {"image": image}, 200),
        ("classify", {"image": image}, 200),
        ("slice", {"query": {"image": image}}, 422),  # searched, then: no predictions here
        ("images", {"images": [{"data": b64(png((1, 2, 3)))}]}, 200),
    ]:
        response = client.post(f"/collections/c/{url}", json=body)
        assert response.status_code == status, (url, response.text)
        taken.append(slots.taken)
    assert taken == [0, 1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("route", ["search", "match", "classify"])
def test_images_are_held_to_a_budget_of_decoded_bytes(client, route) -> None:
    assert client.post("/collections", json={"name": "c"}).status_code == 201
    upload(client, "c", (200, 10, 10))
    # 48 KB of 16-bit PNG: 25 Mpx, within the pixel limit, but about 300 MB to decode
    response = client.post(
        f"/collections/c/{route}", json={"image": b64(sixteen_bit_png(5000, 5000))}
    )
    assert response.status_code == 422, response.text
    assert "I;16" in response.text and "MiB" in response.text
    small = client.post(f"/collections/c/{route}", json={"image": b64(sixteen_bit_png(300, 200))})
    assert small.status_code == 200, small.text


def test_filters_are_capped(client) -> None:
    assert client.post("/collections", json={"name": "c"}).status_code == 201
    upload(client, "c", (200, 10, 10))
    labels = [f"label-{i}" for i in range(1001)]
    ok = client.post("/collections/c/search", json={"text": "x", "where": {"label": labels[:1000]}})
    assert ok.status_code == 200, ok.text
    for where in [
        {"label": labels},
        {"label": "x" * 1001},
        {f"field{i}": "x" for i in range(17)},
    ]:
        response = client.post("/collections/c/search", json={"text": "x", "where": where})
        assert response.status_code == 422, response.text
        assert "at most" in response.text


@pytest.mark.parametrize(
    ("url", "prefix"),
    [("/collections/c/search", b'{"text": "'), ("/collections", b'{"name": "')],
)
def test_chunked_json_over_the_limit_is_413(client, url, prefix) -> None:
    assert client.post("/collections", json={"name": "c"}).status_code == 201

    def chunks():  # type: ignore[no-untyped-def]
        yield prefix
        for _ in range(10):  # 640 KiB, no Content-Length
            yield b"x" * 65536
        yield b'"}'

    response = client.post(url, content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert "limit" in response.json()["detail"]


def test_thumbnails_come_in_a_few_sizes_in_a_capped_cache(settings) -> None:
    settings.thumbnail_cache_bytes = 6000
    client = client_for(settings)
    assert client.post("/collections", json={"name": "t"}).status_code == 201
    ids = upload(client, "t", *[(i * 50, 90, 90) for i in range(5)])
    folder = settings.root / "t" / "thumbnails"
    made: set[str] = set()
    for image_id in ids:
        for size in range(16, 1025, 40):
            response = client.get(f"/collections/t/images/{image_id}/thumbnail?size={size}")
            assert response.status_code == 200
            Image.open(io.BytesIO(response.content)).verify()
            cached = list(folder.glob("*.jpg"))
            assert sum(p.stat().st_size for p in cached) <= 6000
            made |= {p.name for p in cached}
        assert f"{image_id}-" in " ".join(p.name for p in folder.glob("*.jpg"))  # newest kept
    assert {name.rsplit("-", 1)[1] for name in made} == {
        f"{size}.jpg" for size in (64, 128, 256, 512, 1024)
    }
    assert len(made) == 5 * 5
    again = client.get(f"/collections/t/images/{ids[0]}/thumbnail?size=100")
    assert again.status_code == 200  # an evicted thumbnail is made again


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_bomb_uploads_keep_server_memory_bounded(tmp_path, torch_embedder) -> None:
    buffer = io.BytesIO()
    Image.new("L", (9400, 9400)).save(buffer, "PNG")
    bomb = buffer.getvalue()
    root = tmp_path / "root"
    root.mkdir()
    model = ("--model", torch_embedder.name, "--runtime", "torch")
    with running_server(root, *model) as url:
        request = urllib.request.Request(
            url + "/collections",
            json.dumps({"name": "b"}).encode(),
            {"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request).close()
        pid = int(subprocess.check_output(["pgrep", "-f", "--", f"--root {root}"]).split()[0])
        before = vm_hwm_kib(pid)

        def send() -> int:
            body = json.dumps({"images": [{"data": b64(bomb)}]}).encode()
            req = urllib.request.Request(
                url + "/collections/b/images", body, {"Content-Type": "application/json"}
            )
            try:
                urllib.request.urlopen(req).close()
            except urllib.error.HTTPError as exc:
                return exc.code
            return 200

        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            codes = list(pool.map(lambda _: send(), range(10)))
        grown_mib = (vm_hwm_kib(pid) - before) / 1024
    assert codes == [422] * 10
    assert grown_mib < 150, f"server peak memory grew by {grown_mib:.0f} MiB"
