"""A detector's metrics inside a slice of the data, beside the same metrics everywhere.

A *slice* is the images a search returns ("taxis", images like this one, a filter). Its
metrics are computed by pycocotools' COCOeval on the ground truth and predictions stored
in the collection, restricted to the slice's images, beside the same metrics over every
image; per-class precision and recall count the stored outcomes (IoU 0.5).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Collection as Group
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pixseek.collection.collection import Collection
from pixseek.core.errors import InvalidInputError
from pixseek.core.filters import Filter
from pixseek.core.matching import FN, FP, TP, WRONG_CLASS


@dataclass(frozen=True, slots=True)
class ClassMetrics:
    label: str
    truth: int
    tp: int
    fp: int
    fn: int
    ap50: float | None  # None: no ground truth of this class here

    @property
    def precision(self) -> float | None:
        predicted = self.tp + self.fp
        return self.tp / predicted if predicted else None

    @property
    def recall(self) -> float | None:
        return self.tp / self.truth if self.truth else None


@dataclass(frozen=True, slots=True)
class Metrics:
    images: int
    map: float  # COCO mAP, IoU 0.5:0.95
    ap50: float
    classes: dict[str, ClassMetrics]

    @property
    def recall(self) -> float | None:
        truth = sum(c.truth for c in self.classes.values())
        return sum(c.tp for c in self.classes.values()) / truth if truth else None


@dataclass(frozen=True, slots=True)
class SliceReport:
    inside: Metrics
    whole: Metrics

    def to_dict(self) -> dict[str, Any]:
        """The one JSON shape of a slice report (the CLI's --json and the API)."""
        inside, whole = self.inside, self.whole
        return {
            "images": inside.images,
            "map": round(inside.map, 4),
            "whole_map": round(whole.map, 4),
            "ap50": round(inside.ap50, 4),
            "whole_ap50": round(whole.ap50, 4),
            "recall": _rounded(inside.recall),
            "whole_recall": _rounded(whole.recall),
            "classes": [
                _row(whole.classes[label], row)
                for label, row in inside.classes.items()
                if row.truth or row.fp
            ],
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _row(whole: ClassMetrics, inside: ClassMetrics) -> dict[str, Any]:
    return {
        "label": whole.label,
        "truth": inside.truth,
        "precision": _rounded(inside.precision),
        "recall": _rounded(inside.recall),
        "ap50": _rounded(inside.ap50),
        "whole_precision": _rounded(whole.precision),
        "whole_recall": _rounded(whole.recall),
        "whole_ap50": _rounded(whole.ap50),
    }


@dataclass(slots=True)
class CocoData:
    """The collection's ground truth and predictions as pycocotools wants them."""

    truth: dict[str, Any]
    detections: list[dict[str, Any]]
    image_numbers: dict[str, int]
    labels: list[str]
    outcomes: dict[str, list[tuple[str, str]]] = field(
        default_factory=dict
    )  # image -> (label, outcome)


def coco_data(collection: Collection) -> CocoData:
    images = {r.id: r for r in collection.records(Filter.where({"kind": "image"}))}
    objects = [
        r for r in collection.records(Filter.where({"kind": "object", "source": ["gt", "pred"]}))
    ]
    if not any(r.source == "pred" for r in objects):
        raise InvalidInputError(
            "this collection has no predictions: index them with --coco GT.json --predictions "
            "PRED.json"
        )
    labels = sorted({r.label for r in objects if r.label})
    category = {label: number for number, label in enumerate(labels, 1)}
    numbers = {image_id: number for number, image_id in enumerate(sorted(images), 1)}
    data = CocoData(
        truth={
            "images": [
                {"id": numbers[i], "width": r.width, "height": r.height} for i, r in images.items()
            ],
            "categories": [{"id": n, "name": label} for label, n in category.items()],
            "annotations": [],
        },
        detections=[],
        image_numbers=numbers,
        labels=labels,
    )
    for record in objects:
        if record.image_id not in numbers or record.label is None or record.box is None:
            continue
        entry = {
            "image_id": numbers[record.image_id],
            "category_id": category[record.label],
            "bbox": list(record.box),
        }
        if record.source == "gt":
            crowd = int(bool(record.metadata.get("iscrowd")))
            area = record.box[2] * record.box[3]
            entry |= {"id": len(data.truth["annotations"]) + 1, "area": area, "iscrowd": crowd}
            data.truth["annotations"].append(entry)
        else:
            data.detections.append(entry | {"score": float(record.confidence or 0.0)})
        if record.outcome:
            data.outcomes.setdefault(record.image_id, []).append((record.label, record.outcome))
    return data


def evaluate(data: CocoData, image_ids: Group[str] | None = None) -> Metrics:
    """COCOeval over ``image_ids`` (all images when None), quietly (it prints)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    chosen = sorted(data.image_numbers if image_ids is None else image_ids)
    numbers = [data.image_numbers[i] for i in chosen if i in data.image_numbers]
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = data.truth
        truth.createIndex()
        results = truth.loadRes(data.detections) if data.detections else COCO()
        evaluation = COCOeval(truth, results, "bbox")
        evaluation.params.imgIds = numbers
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    precision = evaluation.eval["precision"]  # [iou, recall, class, area, max detections]
    outcome_counts = _counts(data, chosen)
    classes = {}
    for k, label in enumerate(data.labels):
        curve = precision[0, :, k, 0, -1]
        ap = float(curve[curve > -1].mean()) if (curve > -1).any() else None
        counts = outcome_counts[label]
        classes[label] = ClassMetrics(
            label, counts[TP] + counts[FN], counts[TP], counts[FP], counts[FN], ap
        )
    return Metrics(len(numbers), float(evaluation.stats[0]), float(evaluation.stats[1]), classes)


def _counts(data: CocoData, image_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Outcomes per class, in one pass: TP counted once (on the ground truth), wrong class
    as FP."""
    counts = {label: {TP: 0, FP: 0, FN: 0} for label in data.labels}
    for image_id in image_ids:
        for label, outcome in data.outcomes.get(image_id, ()):
            if label not in counts:
                continue
            if outcome in (FP, WRONG_CLASS):
                counts[label][FP] += 1
            elif outcome in (TP, FN):
                counts[label][outcome] += 1
    for per_class in counts.values():
        per_class[TP] //= 2  # a true positive is both a ground-truth box and a prediction
    return counts


def slice_report(collection: Collection, image_ids: Group[str]) -> SliceReport:
    if not image_ids:
        raise InvalidInputError("the slice is empty: the query returned no images")
    data = coco_data(collection)
    return SliceReport(evaluate(data, image_ids), evaluate(data))
