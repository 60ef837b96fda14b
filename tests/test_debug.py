"""Model debugging on COCO-mini: outcomes, slice metrics against pycocotools, blind spots
(embedding clusters, box attributes, metadata) with a planted failure."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from pixseek.cli.main import main
from pixseek.collection import open_collection
from pixseek.core.filters import Filter
from pixseek.core.matching import iou
from pixseek.ingest import CocoSource, ingest
from pixseek.jobs.blindspots import find_blindspots, rank_clusters, wilson
from pixseek.jobs.slices import coco_data, evaluate, slice_report
from tests.test_several_models import HistogramEmbedder

PLANTED = 12  # images whose every object the "detector" misses


def generate(coco: Path, out: Path) -> tuple[Path, dict[str, int], list[int]]:
    """Predictions made from the ground truth, with known outcomes."""
    data = json.loads((coco / "annotations" / "instances_val2017.json").read_text())
    rng = np.random.default_rng(0)
    images = sorted(i["id"] for i in data["images"])
    weak = images[:PLANTED]
    categories = [c["id"] for c in data["categories"]]
    by_image: dict[int, list[dict]] = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    sizes = {i["id"]: (i["width"], i["height"]) for i in data["images"]}
    expected = {"TP": 0, "FN": 0, "wrong_class": 0, "FP": 0, "ignored": 0}
    results = []
    for image in images:
        anns = by_image.get(image, [])
        for ann in anns:
            if ann["iscrowd"]:
                expected["ignored"] += 1
                continue
            same = [a for a in anns if a is not ann and a["category_id"] == ann["category_id"]]
            crowded = any(iou(tuple(ann["bbox"]), tuple(a["bbox"])) >= 0.2 for a in same)
            if image in weak or crowded:
                expected["FN"] += 1
                continue
            x, y, w, h = ann["bbox"]
            box = [x + 0.02 * w, y + 0.02 * h, w * 0.98, h * 0.98]
            category = ann["category_id"]
            if rng.random() < 0.15:
                other = int(rng.choice([c for c in categories if c != category]))
                clash = any(
                    a["category_id"] == other and iou(tuple(box), tuple(a["bbox"])) >= 0.5
                    for a in anns
                )
                if not clash:
                    category = other
            if category == ann["category_id"]:
                expected["TP"] += 1
            else:
                expected["FN"] += 1
                expected["wrong_class"] += 1
            results.append(
                {
                    "image_id": image,
                    "category_id": category,
                    "bbox": box,
                    "score": float(rng.uniform(0.3, 1.0)),
                }
            )
        width, height = sizes[image]
        fp = [width - 6.0, height - 6.0, 5.0, 5.0]  # a tiny box in a corner
        if image not in weak and all(iou(tuple(fp), tuple(a["bbox"])) < 0.5 for a in anns):
            expected["FP"] += 1
            results.append(
                {"image_id": image, "category_id": categories[0], "bbox": fp, "score": 0.2}
            )
    path = out / "predictions.json"
    path.write_text(json.dumps(results))
    return path, expected, weak


@pytest.fixture(scope="module")
def debugged(coco, tmp_path_factory):  # type: ignore[no-untyped-def]
    work = tmp_path_factory.mktemp("debug")
    predictions, expected, weak = generate(coco, work)
    collection = open_collection(work / "c", embedder=HistogramEmbedder(), create=True)
    gt = coco / "annotations" / "instances_val2017.json"
    report = ingest(collection, CocoSource(gt, coco / "val2017", predictions))
    assert report.failed == 0
    return collection, predictions, expected, weak


def test_outcomes_are_counted_exactly(debugged) -> None:
    collection, _, expected, _ = debugged

    def count(source: str, outcome: str) -> int:
        return collection.count(
            Filter.where({"kind": "object", "source": source, "outcome": outcome})
        )

    assert count("gt", "TP") == count("pred", "TP") == expected["TP"]
    assert count("gt", "FN") == expected["FN"]
    assert count("gt", "ignored") == expected["ignored"]
    assert count("pred", "wrong_class") == expected["wrong_class"]
    assert count("pred", "FP") == expected["FP"]


def test_metrics_equal_pycocotools(debugged, coco) -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    collection, predictions, _, weak = debugged
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(coco / "annotations" / "instances_val2017.json"))
        evaluation = COCOeval(truth, truth.loadRes(str(predictions)), "bbox")
        evaluation.params.imgIds = weak + sorted(truth.getImgIds())[PLANTED : PLANTED + 20]
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    data = coco_data(collection)
    by_coco_id = {
        r.metadata["coco_id"]: r.id for r in collection.records(Filter.where({"kind": "image"}))
    }
    ours = evaluate(data, {by_coco_id[i] for i in evaluation.params.imgIds})
    assert ours.map == pytest.approx(evaluation.stats[0], abs=1e-9)
    assert ours.ap50 == pytest.approx(evaluation.stats[1], abs=1e-9)
    names = {c["id"]: c["name"] for c in truth.loadCats(truth.getCatIds())}
    precision = evaluation.eval["precision"]
    for k, category in enumerate(evaluation.params.catIds):
        curve = precision[0, :, k, 0, -1]
        if (curve > -1).any():
            assert ours.classes[names[category]].ap50 == pytest.approx(curve[curve > -1].mean())


def test_a_slice_holding_the_weak_images_shows_lower_recall(debugged, capsys) -> None:
    collection, _, _, weak = debugged
    images = {
        r.metadata["coco_id"]: r.id for r in collection.records(Filter.where({"kind": "image"}))
    }
    inside = {images[i] for i in weak} | set(list(images.values())[-PLANTED:])
    report = slice_report(collection, inside)
    assert report.inside.recall is not None and report.whole.recall is not None
    assert report.inside.recall < report.whole.recall - 0.2
    assert report.inside.ap50 < report.whole.ap50
    where = "id=" + ",".join(sorted(inside))
    assert main(["slice", "--where", where, "--collection", str(collection.root), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["recall"] == pytest.approx(report.inside.recall, abs=1e-4)
    assert main(["slice", "a red bus", "--collection", str(collection.root), "--where", "x=1"]) == 2


def test_blindspots_rank_a_planted_error_cluster_first() -> None:
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(6, 32))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    members = np.repeat(np.arange(6), 100)
    population = centres[members] + rng.normal(scale=0.05, size=(600, 32))
    population /= np.linalg.norm(population, axis=1, keepdims=True)
    errors = rng.random(600) < 0.1
    errors[members == 4] = rng.random(100) < 0.8  # the blind spot
    ranked = rank_clusters(population[errors], population, errors, clusters=6)
    _centre, rows, rate, lift = ranked[0]
    assert np.mean(members[rows] == 4) > 0.9 and rate > 0.6 and lift > 3


class NamedHistograms(HistogramEmbedder):
    """Histograms for images; texts get fixed pseudo-random vectors, enough to name clusters."""

    def embed_text_batch(self, texts):  # type: ignore[no-untyped-def]
        return np.stack(
            [np.random.default_rng(len(t) * 7919 + sum(map(ord, t))).random(64) for t in texts]
        )


def test_blindspots_on_the_collection(debugged) -> None:
    collection, _, expected, _ = debugged
    collection.index().bind(NamedHistograms())
    report = find_blindspots(collection, clusters=4)
    lows = [s.lift_low for s in report.blindspots]
    assert lows == sorted(lows, reverse=True)
    assert {"cluster", "box"} <= {s.kind for s in report.blindspots}  # one split: no metadata
    clusters = [s for s in report.blindspots if s.kind == "cluster"]
    assert sum(s.errors for s in clusters) == expected["FN"] == report.errors
    assert all(len(s.names) == 3 and s.names[0].startswith("a photo of a") for s in clusters)
    assert all(e.outcome in ("FN", "wrong_class") for s in report.blindspots for e in s.examples)
    areas = [s for s in report.blindspots if s.name.startswith("area:")]
    assert sum(s.objects for s in areas) == report.objects  # every object in one bucket
    false = find_blindspots(collection, outcome="FP", clusters=2, kinds=["cluster"])
    assert sum(s.errors for s in false.blindspots) == expected["FP"] + expected["wrong_class"]


def test_blindspots_within_a_selection_over_http(debugged) -> None:
    """A selection's blind spots (the map's lasso, a sample): only its images' objects."""
    from fastapi.testclient import TestClient

    from pixseek.api import ServeSettings, create_app

    collection = debugged[0]
    images = [r.id for r in collection.records(Filter.where({"kind": "image"}))]
    chosen = images[: len(images) // 2]
    whole = find_blindspots(collection, kinds=["box"])
    inside = find_blindspots(collection, kinds=["box"], images=chosen)
    assert 0 < inside.objects < whole.objects
    assert all(e.image_id in chosen for s in inside.blindspots for e in s.examples)
    client = TestClient(
        create_app(ServeSettings(root=collection.root.parent)), base_url="http://localhost"
    )
    body = {"image_ids": chosen, "kind": ["box"], "top": 500}
    answer = client.post("/collections/c/blindspots", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == json.loads(json.dumps(inside.to_dict()))
    none = client.post("/collections/c/blindspots", json={"image_ids": ["nope"]})
    assert none.status_code == 422 and "these images" in none.text


def test_wilson_intervals_widen_for_small_slices() -> None:
    small, large = wilson(4, 5), wilson(400, 500)
    assert small[0] < 0.4 < 0.8 < small[1] and large[0] > 0.76 and large[1] < 0.84
    assert wilson(0, 10)[0] == pytest.approx(0.0) and wilson(10, 10)[1] == pytest.approx(1.0)


def miss_small_boxes(coco: Path, out: Path) -> tuple[Path, int]:
    """A detector that misses every box under 32×32 px, and 20% of the rest at random."""
    data = json.loads((coco / "annotations" / "instances_val2017.json").read_text())
    rng = np.random.default_rng(11)
    results, small = [], 0
    for ann in data["annotations"]:
        x, y, w, h = ann["bbox"]
        if ann["iscrowd"]:
            continue
        if w * h < 32 * 32:
            small += 1
            continue
        if rng.random() < 0.2:
            continue
        box = [x + 0.01 * w, y + 0.01 * h, 0.98 * w, 0.98 * h]
        results.append(
            {
                "image_id": ann["image_id"],
                "category_id": ann["category_id"],
                "bbox": box,
                "score": float(rng.uniform(0.3, 1.0)),
            }
        )
    path = out / "small-misses.json"
    path.write_text(json.dumps(results))
    return path, small


@pytest.fixture(scope="module")
def small_misses(coco, tmp_path_factory):  # type: ignore[no-untyped-def]
    work = tmp_path_factory.mktemp("small")
    predictions, small = miss_small_boxes(coco, work)
    collection = open_collection(work / "c", embedder=NamedHistograms(), create=True)
    gt = coco / "annotations" / "instances_val2017.json"
    assert ingest(collection, CocoSource(gt, coco / "val2017", predictions)).failed == 0
    return collection, small


def test_planted_small_box_misses_rank_first(small_misses, capsys) -> None:
    collection, small = small_misses
    report = find_blindspots(collection, clusters=6)  # clusters, box attributes, metadata
    first = report.blindspots[0]
    assert first.kind == "box" and first.name.startswith("area: small")
    assert first.errors == first.objects == small and first.error_rate == 1.0
    assert 1 < first.lift_low <= first.lift <= first.lift_high
    clusters = [s for s in report.blindspots if s.kind == "cluster"]
    assert clusters and all(s.lift_low < first.lift_low for s in clusters)
    # the CLI (box attributes and metadata: clusters are named by the model, which a
    # collection of test vectors cannot load from its manifest)
    root = str(collection.root)
    argv = ["blindspots", "--collection", root, "--kind", "box", "--kind", "metadata"]
    assert main([*argv, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["blindspots"][0] == first.to_dict()
    assert main([*argv, "--top", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("1. lift") and "area: small" in lines[1]
    # what the first line counts is said ("objects FN overall" counted wrong classes too),
    # and boxes are rounded as the ground truth's are
    assert "annotated objects missed or found as another class" in lines[0]
    assert re.fullmatch(r"\s+\S.* \((\d+\.\d, ){3}\d+\.\d\) .+", lines[2]), lines[2]
