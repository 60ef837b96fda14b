"""The embedding map on COCO-mini: UMAP stored with the index, new points added without a
refit, a PNG from the CLI, pages from the API."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pixseek.cli.main import main
from pixseek.collection import open_collection
from pixseek.ingest import CocoSource, ingest
from pixseek.jobs.embedding_map import load_map, update_map
from tests.test_several_models import HistogramEmbedder

pytestmark = pytest.mark.slow  # UMAP compiles its kernels on first use


def test_map_is_stored_grows_and_is_served(coco, tmp_path, capsys) -> None:
    from fastapi.testclient import TestClient

    from pixseek.api import ServeSettings, create_app

    pytest.importorskip("umap")
    collection = open_collection(tmp_path / "c", embedder=HistogramEmbedder(), create=True)
    gt = json.loads((coco / "annotations" / "instances_val2017.json").read_text())
    first = dict(gt, images=gt["images"][:40])
    (tmp_path / "first.json").write_text(json.dumps(first))
    ingest(collection, CocoSource(tmp_path / "first.json", coco / "val2017"))
    root = str(collection.root)
    assert main(["map", str(tmp_path / "map.png"), "--collection", root, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["refitted"] and report["points"] == collection.count()
    picture = Image.open(tmp_path / "map.png")
    assert picture.size == (1260, 1000) and len(picture.getcolors(1 << 20) or []) > 10
    before = load_map(collection)
    assert before.xy.min() >= 0 and before.xy.max() <= 1

    # a few more images: placed beside their neighbours, the fitted points stay put
    more = dict(gt, images=gt["images"][:48])
    (tmp_path / "more.json").write_text(json.dumps(more))
    ingest(collection, CocoSource(tmp_path / "more.json", coco / "val2017"))
    update = update_map(collection)
    assert not update.refitted and update.added == collection.count() - len(before) > 0
    after = load_map(collection)
    old = {str(i): n for n, i in enumerate(before.columns["id"])}
    same = [n for n, i in enumerate(after.columns["id"]) if str(i) in old]
    assert np.array_equal(
        after.xy[same], before.xy[[old[str(i)] for i in after.columns["id"][same]]]
    )
    new = [n for n, i in enumerate(after.columns["id"]) if str(i) not in old]
    assert np.all(np.isfinite(after.xy[new]))

    client = TestClient(create_app(ServeSettings(root=tmp_path)), base_url="http://localhost")
    pages = [
        client.get("/collections/c/map", params={"offset": o, "limit": 200}).json()
        for o in range(0, len(after), 200)
    ]
    points = [p for page in pages for p in page["points"]]
    assert len(points) == pages[0]["total"] == len(after)
    labelled = [p for p in points if p["kind"] == "object"]
    assert labelled and all(p["label"] and p["source"] == "gt" for p in labelled)
    assert client.post("/collections/c/map", json={}).json()["added"] == 0
    assert client.get("/collections/c/map", params={"limit": 0}).status_code == 422

    # a damaged map file (cut short on disk): a 404 that says so, and the next update refits
    from pixseek.jobs.embedding_map import map_path

    stored = map_path(collection, collection.index())
    stored.write_bytes(stored.read_bytes()[:3000])
    damaged = client.get("/collections/c/map")
    assert damaged.status_code == 404 and "damaged" in damaged.json()["detail"], damaged.text
    assert client.post("/collections/c/map", json={}).json()["refitted"] is True
    assert client.get("/collections/c/map").status_code == 200


def test_umaps_compiled_functions_are_kept_on_disk() -> None:
    """numba compiles umap-learn's functions again in every process unless they are kept
    (a `pixseek map` of 800 records: 10.9 s before, 3.4 s once kept)."""
    from pixseek.jobs.embedding_map import _umap

    umap = _umap()
    kept = umap.umap_.smooth_knn_dist._cache
    assert type(kept).__name__ == "FunctionCache"
