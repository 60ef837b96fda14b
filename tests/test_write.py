"""Every writer fills every index: folder ingest, Ray ingest, API uploads, region windows and
reindex all go through ``ingest.write.write_prepared``, so a collection with two models
holds the same records in both."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pixseek.api import ServeSettings, create_app
from pixseek.cli.main import main
from pixseek.collection import open_collection
from pixseek.demo.factory import build_clip
from tests.conftest import make_image


def ids_per_index(root: Path) -> dict[str, set[str]]:
    collection = open_collection(root)
    return {
        name: {r.id for records, _ in index.store.scan() for r in records}
        for name, index in collection.indexes.items()
    }


def assert_complete(root: Path, images: int) -> set[str]:
    found = ids_per_index(root)
    assert len(found) == 2
    first, second = found.values()
    assert first == second
    collection = open_collection(root)
    assert collection.count() == len(first)
    assert sum(1 for r in collection.records() if r.kind == "image") == images
    return first


def png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.slow
def test_every_writer_fills_both_indexes(tmp_path: Path, tiny_model: Path) -> None:
    pytest.importorskip("ray.data", reason="pip install 'ray[data]' (in the dev extras)")
    other_model = build_clip(tmp_path / "other-clip", seed=1)
    batches = {}
    for batch in ("a", "b", "c", "d"):
        batches[batch] = tmp_path / batch
        for i in range(3):
            make_image(batches[batch] / f"{batch}{i}.png", (40 * i + 20, ord(batch), 90))
    root = tmp_path / "server" / "photos"
    torch = ("--runtime", "torch", "--quiet")
    assert main(["index", str(batches["a"]), "--collection", str(root), "--model",
                 str(tiny_model), *torch]) == 0  # fmt: skip
    # reindex: the second index gets what the first has
    assert main(["reindex", "--collection", str(root), "--model", str(other_model), *torch]) == 0
    assert_complete(root, 3)
    # local ingest writes both indexes in one pass
    assert main(["index", str(batches["b"]), "--collection", str(root), *torch]) == 0
    assert_complete(root, 6)
    # region windows go to both
    regions = ["index", str(batches["c"]), "--collection", str(root), "--regions", "grid"]
    assert main([*regions, *torch]) == 0
    ids = assert_complete(root, 9)
    assert len(ids) == 9 + 3 * 34
    # the Ray runner writes both
    ray = ["--engine", "ray", "--batch-size", "4"]
    assert main(["index", str(batches["d"]), "--collection", str(root), *ray, *torch]) == 0
    assert_complete(root, 12)
    # uploads through the HTTP API write both
    settings = ServeSettings(root=root.parent, runtime="torch", model=str(tiny_model))
    client = TestClient(create_app(settings), base_url="http://localhost")
    files = [("files", (f"u{i}.png", png((i * 60, 200, 10)), "image/png")) for i in range(2)]
    response = client.post("/collections/photos/images", files=files)
    assert response.status_code == 200, response.text
    assert_complete(root, 14)
