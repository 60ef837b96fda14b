"""Model debugging: a detector's metrics inside a slice of the data, and its blind spots.

A *slice* is the images a search returns ("taxis", images like this one, a filter). Its
metrics are computed by pycocotools' COCOeval on the ground truth and predictions stored
in the collection, restricted to the slice's images, beside the same metrics over every
image; per-class precision and recall count the stored outcomes (IoU 0.5).

*Blind spots* are clusters of error objects (missed ground truth, or false positives) in
embedding space, ranked by how much more often objects of the same classes fail there
than anywhere (the lift), and named by the nearest text prompts.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Collection as Group
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pixseek.collection.collection import Collection
from pixseek.collection.index import Index
from pixseek.core.errors import InvalidInputError
from pixseek.core.filters import Filter
from pixseek.core.matching import FN, FP, TP, WRONG_CLASS
from pixseek.core.records import Record
from pixseek.core.vectors import Vectors, l2_normalize

ATTRIBUTES = (
    "",
    "at night",
    "in the rain",
    "blurry",
    "small",
    "far away",
    "occluded",
    "cropped at the edge",
    "in a crowd",
    "close-up",
)


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


@dataclass(frozen=True, slots=True)
class Blindspot:
    errors: int
    objects: int
    error_rate: float
    lift: float
    names: list[str]
    examples: list[Record]


def rank_clusters(
    errors: Vectors, population: Vectors, population_errors: NDArray[np.bool_], clusters: int
) -> list[tuple[Vectors, NDArray[np.int64], float, float]]:
    """Cluster the error vectors; assign every object of the population to its nearest
    centre. Returns (centre, population rows, error rate, lift), highest lift first."""
    from sklearn.cluster import KMeans

    count = min(clusters, len(errors))
    model = KMeans(n_clusters=count, n_init=4, random_state=0).fit(errors)
    centres = l2_normalize(model.cluster_centers_)
    assigned = np.argmax(population @ centres.T, axis=1)
    base = float(population_errors.mean())
    ranked = []
    for c in range(count):
        rows = np.flatnonzero(assigned == c)
        if not len(rows):
            continue
        rate = float(population_errors[rows].mean())
        ranked.append((centres[c], rows, rate, rate / base if base else 0.0))
    return sorted(ranked, key=lambda item: (-item[3], -len(item[1])))


def find_blindspots(
    collection: Collection,
    index: Index | None = None,
    outcome: str = FN,
    clusters: int = 8,
    vocabulary: Sequence[str] = ATTRIBUTES,
    examples: int = 5,
) -> list[Blindspot]:
    if outcome not in (FN, FP):
        raise InvalidInputError(f"blind spots are of FN (missed) or FP objects, not {outcome!r}")
    index = index or collection.index()
    source = "gt" if outcome == FN else "pred"
    records: list[Record] = []
    parts: list[Vectors] = []
    for batch, vectors in index.store.scan(
        Filter.where({"kind": "object", "source": source}), with_vectors=True
    ):
        assert vectors is not None
        records += batch
        parts.append(vectors)
    failing = np.array([r.outcome in (outcome, WRONG_CLASS) for r in records], bool)
    if not failing.any():
        raise InvalidInputError(f"no {outcome} objects in this collection")
    labels = {r.label for r, bad in zip(records, failing, strict=True) if bad and r.label}
    keep = np.array([r.label in labels and r.outcome != "ignored" for r in records], bool)
    population = np.concatenate(parts)[keep]
    kept = [r for r, k in zip(records, keep, strict=True) if k]
    is_error = failing[keep]
    ranked = rank_clusters(population[is_error], population, is_error, clusters)
    prompts = [f"a photo of a {label} {a}".strip() for label in sorted(labels) for a in vocabulary]
    if not index.embedder.capabilities.text:  # an image-only model cannot name its clusters
        prompts = []
    prompt_vectors = (
        index.embedder.embed_texts(prompts) if prompts else np.zeros((0, index.dim), np.float32)
    )
    spots = []
    for centre, rows, rate, lift in ranked:
        error_rows = rows[is_error[rows]]
        nearest = error_rows[np.argsort(-(population[error_rows] @ centre))][:examples]
        named = np.argsort(-(prompt_vectors @ centre))[:3]
        spots.append(
            Blindspot(
                errors=len(error_rows),
                objects=len(rows),
                error_rate=round(rate, 4),
                lift=round(lift, 3),
                names=[prompts[i] for i in named],
                examples=[kept[i] for i in nearest],
            )
        )
    return spots
