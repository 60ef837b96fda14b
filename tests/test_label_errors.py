"""Label errors on COCO-mini with planted swaps: the CLI, the API and the stored verdicts."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixseek.cli.main import main
from pixseek.collection import open_collection
from pixseek.collection.manifest import DEFAULT_CROP_MARGIN
from pixseek.core.filters import Filter
from pixseek.imaging.crops import crop_box
from pixseek.imaging.decode import load_image_file
from pixseek.ingest import CocoSource, ingest
from pixseek.models import BatchEmbedder

SWAPS = 30  # boxes given another class's label
DIM = 128


def crop_key(image: Image.Image) -> str:
    return hashlib.sha1(image.tobytes() + repr(image.size).encode()).hexdigest()


class RecognisingEmbedder(BatchEmbedder):
    """A stand-in for a model that recognises COCO's classes: a crop's vector is its true
    class's direction plus noise (so neighbours are often, not always, of its class).
    Crops are known by their pixels, taken from the annotations before any label was
    changed; anything else gets a vector of noise."""

    def __init__(self, classes: dict[str, int], noise: float = 0.12) -> None:
        super().__init__("recognising-test-embedder", DIM)
        self.classes = classes
        self.noise = noise

    def embed_image_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        rows = []
        for image in images:
            key = crop_key(image)
            rng = np.random.default_rng(int(key[:12], 16))
            row = rng.normal(0, self.noise, DIM)
            if key in self.classes:
                row[self.classes[key]] += 1.0
            rows.append(row)
        return np.asarray(rows, np.float32)

    def embed_text_batch(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError


def plant_swaps(coco: Path, out: Path) -> tuple[Path, set[int], RecognisingEmbedder]:
    data = json.loads((coco / "annotations" / "instances_val2017.json").read_text())
    files = {i["id"]: coco / "val2017" / i["file_name"] for i in data["images"]}
    categories = sorted({a["category_id"] for a in data["annotations"]})
    truth: dict[str, int] = {}
    loaded: dict[int, Image.Image] = {}
    for ann in data["annotations"]:
        if ann["image_id"] not in loaded:
            loaded[ann["image_id"]] = load_image_file(files[ann["image_id"]])
        crop = crop_box(loaded[ann["image_id"]], tuple(ann["bbox"]), DEFAULT_CROP_MARGIN)
        truth[crop_key(crop)] = categories.index(ann["category_id"])
    rng = np.random.default_rng(7)
    visible = [a for a in data["annotations"] if not a["iscrowd"] and a["area"] >= 32 * 32]
    planted = set()
    for n in rng.choice(len(visible), SWAPS, replace=False):
        ann = visible[n]
        ann["category_id"] = int(rng.choice([c for c in categories if c != ann["category_id"]]))
        planted.add(ann["id"])
    path = out / "swapped.json"
    path.write_text(json.dumps(data))
    return path, planted, RecognisingEmbedder(truth)


@pytest.fixture(scope="module")
def swapped(coco, tmp_path_factory):  # type: ignore[no-untyped-def]
    work = tmp_path_factory.mktemp("labels")
    annotations, planted, embedder = plant_swaps(coco, work)
    collection = open_collection(work / "c", embedder=embedder, create=True)
    assert ingest(collection, CocoSource(annotations, coco / "val2017")).failed == 0
    return collection, planted


def precision(rows: list[dict], planted: set[int]) -> float:
    return sum(row["record"]["metadata"]["coco_id"] in planted for row in rows) / len(rows)


def test_planted_swaps_lead_the_list_through_the_cli(swapped, capsys) -> None:
    collection, planted = swapped
    root = str(collection.root)
    assert main(["label-errors", "--collection", root, "--top", "20", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = report["errors"]
    assert len(rows) == 20
    boxes = collection.count(Filter.where({"kind": "object", "source": "gt"}))
    assert report["checked"] == boxes and SWAPS / boxes < 0.06
    assert precision(rows, planted) >= 0.5
    scores = [row["mistakenness"] for row in rows]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0
    assert all(row["suggested"] != row["label"] for row in rows)
    assert main(["label-errors", "--collection", root, "--top", "5"]) == 0
    printed = capsys.readouterr().out
    assert rows[0]["id"] in printed and rows[0]["suggested"] in printed


def test_the_api_lists_them_and_keeps_verdicts(swapped) -> None:
    from fastapi.testclient import TestClient

    from pixseek.api import ServeSettings, create_app

    collection, planted = swapped
    settings = ServeSettings(root=collection.root.parent)
    client = TestClient(create_app(settings), base_url="http://localhost")
    answer = client.get("/collections/c/label-errors", params={"top": 20})
    assert answer.status_code == 200, answer.text
    rows = answer.json()["errors"]
    assert len(rows) == 20 and precision(rows, planted) >= 0.5
    first, second = rows[0]["id"], rows[1]["id"]
    put = client.put(f"/collections/c/label-errors/{first}", json={"verdict": "confirmed"})
    assert put.json()["verdicts"] == {first: "confirmed"}
    client.put(f"/collections/c/label-errors/{second}", json={"verdict": "dismissed"})
    again = client.get("/collections/c/label-errors", params={"top": 2}).json()["errors"]
    assert [row["verdict"] for row in again] == ["confirmed", "dismissed"]
    forgot = client.put(f"/collections/c/label-errors/{second}", json={"verdict": None})
    assert forgot.json()["verdicts"] == {first: "confirmed"}
    assert (
        client.put("/collections/c/label-errors/nope", json={"verdict": "confirmed"}).status_code
        == 404
    )
    assert (
        client.put(f"/collections/c/label-errors/{first}", json={"verdict": "maybe"}).status_code
        == 422
    )
    assert client.get("/collections/c/label-errors", params={"kind": "region"}).status_code == 422
    client.put(f"/collections/c/label-errors/{first}", json={"verdict": None})


def test_the_map_shows_the_swapped_boxes_among_another_class(swapped) -> None:
    """On the embedding map (built and paged through the API), a swapped box sits among
    boxes of its true class, so its label disagrees with its neighbours on the map far
    more often than a correctly labelled box's does: the swaps stand out by colour."""
    from fastapi.testclient import TestClient

    from pixseek.api import ServeSettings, create_app

    collection, planted = swapped
    settings = ServeSettings(root=collection.root.parent)
    client = TestClient(create_app(settings), base_url="http://localhost")
    assert client.post("/collections/c/map", json={}).status_code == 200
    points = client.get("/collections/c/map", params={"limit": 50_000}).json()["points"]
    boxes = [p for p in points if p["kind"] == "object" and p["source"] == "gt"]
    coco_ids = {
        r.id: r.metadata.get("coco_id")
        for r in collection.records(Filter.where({"kind": "object", "source": "gt"}))
    }
    xy = np.array([[p["x"], p["y"]] for p in boxes])
    labels = np.array([p["label"] for p in boxes])
    distances = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(distances, np.inf)
    nearest = np.argsort(distances, axis=1)[:, :10]
    disagreement = (labels[nearest] != labels[:, None]).mean(axis=1)
    swapped_rows = np.array([coco_ids[p["id"]] in planted for p in boxes])
    assert swapped_rows.sum() == SWAPS
    assert disagreement[swapped_rows].mean() >= 0.8
    assert disagreement[swapped_rows].mean() >= 2 * disagreement[~swapped_rows].mean()
