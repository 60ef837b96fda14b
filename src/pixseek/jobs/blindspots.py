"""Blind spots: where a detector fails more often than it does on the same classes anywhere.

Three kinds of slice of the failing objects' population (ground truth for misses, ``FN``;
predictions for false positives, ``FP``) are ranked in one list:

- *clusters* of error objects in embedding space (scikit-learn k-means), every object
  assigned to its nearest centre, named by the nearest text prompts;
- *box attributes*: area as COCO buckets it (small under 32² px, large over 96² px), aspect
  ratio, position in the image, touching the image border, and the image's brightness;
- *metadata*: each value of a field of the objects or their images that has a few values.

A slice's *expected* error rate is what its objects' classes fail at overall, so a slice
full of hard classes is not a blind spot; its *lift* is its error rate over the expected
one. Lifts come with a 95% interval (Wilson's, on the slice's error rate), and the list is
ranked by the interval's lower end: a slice of 5 objects does not outrank one of 500 on
noise.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pixseek.collection.collection import Collection
from pixseek.collection.index import Index
from pixseek.collection.media import record_file
from pixseek.core.errors import InvalidInputError, PixseekError
from pixseek.core.filters import Filter
from pixseek.core.matching import FN, FP, WRONG_CLASS
from pixseek.core.records import Record, record_dict
from pixseek.core.vectors import Vectors, l2_normalize
from pixseek.imaging.decode import DecodeOptions, load_image_file
from pixseek.stores.knn import load_all

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
KINDS = ("cluster", "box", "metadata")
Z95 = 1.959964
SMALL, LARGE = 32**2, 96**2  # COCO's area buckets, in square pixels
DARK, BRIGHT = 70.0, 180.0  # mean luma of the image, 0-255
MAX_VALUES = 20  # a metadata field with more distinct values is an id, not a slice
SKIPPED_FIELDS = frozenset({"outcome", "coco_id", "iscrowd", "tags"})


@dataclass(frozen=True, slots=True)
class Blindspot:
    kind: str  # cluster, box or metadata
    name: str
    errors: int
    objects: int
    error_rate: float
    expected_rate: float
    lift: float
    lift_low: float
    lift_high: float
    names: list[str] = field(default_factory=list)  # nearest prompts, for clusters
    examples: list[Record] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "errors": self.errors,
            "objects": self.objects,
            "error_rate": self.error_rate,
            "expected_rate": self.expected_rate,
            "lift": self.lift,
            "lift_low": self.lift_low,
            "lift_high": self.lift_high,
            "names": list(self.names),
            "examples": [record_dict(r) for r in self.examples],
        }


@dataclass(frozen=True, slots=True)
class BlindspotReport:
    outcome: str
    objects: int
    errors: int
    blindspots: list[Blindspot]

    def to_dict(self) -> dict[str, Any]:
        """The one JSON shape of blind spots (the CLI's --json and the API)."""
        return {
            "outcome": self.outcome,
            "objects": self.objects,
            "errors": self.errors,
            "blindspots": [s.to_dict() for s in self.blindspots],
        }


def wilson(errors: int, total: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval of a proportion."""
    if total == 0:
        return 0.0, 1.0
    p = errors / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


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


@dataclass(slots=True)
class _Population:
    records: list[Record]
    vectors: Vectors
    failing: NDArray[np.bool_]
    expected: NDArray[np.float64]  # each object's class error rate

    def spot(
        self, kind: str, name: str, rows: NDArray[np.int64], examples: int, **extra: Any
    ) -> Blindspot:
        errors = int(self.failing[rows].sum())
        total = len(rows)
        expected = float(self.expected[rows].mean()) if total else 0.0
        rate = errors / total if total else 0.0
        low, high = wilson(errors, total)

        def ratio(value: float) -> float:
            return round(value / expected, 3) if expected else 0.0

        error_rows = rows[self.failing[rows]]
        chosen = extra.pop("chosen", error_rows[:examples])
        return Blindspot(
            kind=kind,
            name=name,
            errors=errors,
            objects=total,
            error_rate=round(rate, 4),
            expected_rate=round(expected, 4),
            lift=ratio(rate),
            lift_low=ratio(low),
            lift_high=ratio(high),
            examples=[self.records[i] for i in chosen],
            **extra,
        )


def find_blindspots(
    collection: Collection,
    index: Index | None = None,
    outcome: str = FN,
    clusters: int = 8,
    vocabulary: Sequence[str] = ATTRIBUTES,
    examples: int = 5,
    kinds: Sequence[str] = KINDS,
    brightness: bool = True,
    images: Iterable[str] | None = None,
) -> BlindspotReport:
    """Every slice of ``kinds`` over the objects ``outcome`` is about, best-supported lift
    first (the lower end of its interval). ``images``: only the objects of these image ids
    (a selection: rates and lifts are then within it)."""
    if outcome not in (FN, FP):
        raise InvalidInputError(f"blind spots are of FN (missed) or FP objects, not {outcome!r}")
    unknown = set(kinds) - set(KINDS)
    if unknown or not kinds:
        raise InvalidInputError(f"slice kinds are {', '.join(KINDS)}, not {sorted(unknown)}")
    chosen = None if images is None else frozenset(images)
    population = _population(collection, index or collection.index(), outcome, chosen)
    spots: list[Blindspot] = []
    if "cluster" in kinds:
        spots += _clusters(population, index or collection.index(), clusters, vocabulary, examples)
    if "box" in kinds or "metadata" in kinds:
        images = {r.id: r for r in collection.records(Filter.where({"kind": "image"}))}
        if "box" in kinds:
            spots += _box_slices(population, images, examples, brightness)
        if "metadata" in kinds:
            spots += _metadata_slices(population, images, examples)
    spots.sort(key=lambda s: (-s.lift_low, -s.lift, -s.objects, s.name))
    return BlindspotReport(outcome, len(population.records), int(population.failing.sum()), spots)


def _population(
    collection: Collection, index: Index, outcome: str, images: frozenset[str] | None
) -> _Population:
    source = "gt" if outcome == FN else "pred"
    records, everything = load_all(index.store, Filter.where({"kind": "object", "source": source}))
    if images is not None:
        rows = [n for n, r in enumerate(records) if r.image_id in images]
        records, everything = [records[n] for n in rows], everything[rows]
    failing = np.array([r.outcome in (outcome, WRONG_CLASS) for r in records], bool)
    if not failing.any():
        where = "this collection" if images is None else "these images"
        raise InvalidInputError(f"no {outcome} objects in {where}")
    labels = {r.label for r, bad in zip(records, failing, strict=True) if bad and r.label}
    keep = np.array([r.label in labels and r.outcome != "ignored" for r in records], bool)
    kept = [r for r, k in zip(records, keep, strict=True) if k]
    is_error = failing[keep]
    totals = Counter(r.label for r in kept)
    wrong = Counter(r.label for r, bad in zip(kept, is_error, strict=True) if bad)
    expected = np.array([wrong[r.label] / totals[r.label] for r in kept], np.float64)
    return _Population(kept, everything[keep], is_error, expected)


def _clusters(
    population: _Population,
    index: Index,
    clusters: int,
    vocabulary: Sequence[str],
    examples: int,
) -> list[Blindspot]:
    vectors, is_error = population.vectors, population.failing
    ranked = rank_clusters(vectors[is_error], vectors, is_error, clusters)
    labels = sorted({r.label for r in population.records if r.label})
    prompts = [f"a photo of a {label} {a}".strip() for label in labels for a in vocabulary]
    if not index.embedder.capabilities.text:  # an image-only model cannot name its clusters
        prompts = []
    prompt_vectors = (
        index.embedder.embed_texts(prompts) if prompts else np.zeros((0, index.dim), np.float32)
    )
    spots = []
    for number, (centre, rows, _rate, _lift) in enumerate(ranked, 1):
        error_rows = rows[is_error[rows]]
        nearest = error_rows[np.argsort(-(vectors[error_rows] @ centre))][:examples]
        names = [prompts[i] for i in np.argsort(-(prompt_vectors @ centre))[:3]]
        name = f"embedding cluster {number}" + (f": like “{names[0]}”" if names else "")
        spots.append(population.spot("cluster", name, rows, examples, names=names, chosen=nearest))
    return spots


def _brightness(records: Iterable[Record]) -> dict[str, float]:
    """Mean luma (0-255) of each image, decoded small; unreadable images are left out."""
    values = {}
    for record in records:
        try:
            image = load_image_file(record_file(record), DecodeOptions(draft_size=64))
        except (PixseekError, OSError):
            continue
        values[record.id] = float(np.asarray(image.convert("L").resize((32, 32))).mean())
    return values


def box_attributes(record: Record, image: Record | None, luma: float | None) -> list[str]:
    """The box-attribute slices an object belongs to."""
    if record.box is None:
        return []
    x, y, w, h = record.box
    width = image.width if image else record.width
    height = image.height if image else record.height
    area = w * h
    names = [
        "area: small (under 32×32 px)"
        if area < SMALL
        else "area: large (over 96×96 px)"
        if area > LARGE
        else "area: medium"
    ]
    if h > 2 * w:
        names.append("shape: tall (height over twice the width)")
    elif w > 2 * h:
        names.append("shape: wide (width over twice the height)")
    else:
        names.append("shape: neither tall nor wide")
    if width and height:
        cx, cy = (x + w / 2) / width, (y + h / 2) / height
        names.append(
            "position: left third"
            if cx < 1 / 3
            else "position: right third"
            if cx > 2 / 3
            else "position: centre third (across)"
        )
        names.append(
            "position: top third"
            if cy < 1 / 3
            else "position: bottom third"
            if cy > 2 / 3
            else "position: middle third (down)"
        )
        touching = x <= 1 or y <= 1 or x + w >= width - 1 or y + h >= height - 1
        names.append("border: touches the image border" if touching else "border: inside")
    if luma is not None:
        names.append(
            f"image: dark (mean brightness under {DARK:.0f})"
            if luma < DARK
            else f"image: bright (mean brightness over {BRIGHT:.0f})"
            if luma > BRIGHT
            else "image: neither dark nor bright"
        )
    return names


def _group(names_of_rows: Iterable[tuple[int, list[str]]]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for row, names in names_of_rows:
        for name in names:
            groups.setdefault(name, []).append(row)
    return groups


def _box_slices(
    population: _Population, images: dict[str, Record], examples: int, brightness: bool
) -> list[Blindspot]:
    used = {r.image_id for r in population.records}
    luma = _brightness(images[i] for i in sorted(used) if i in images) if brightness else {}
    groups = _group(
        (row, box_attributes(r, images.get(r.image_id), luma.get(r.image_id)))
        for row, r in enumerate(population.records)
    )
    return [
        population.spot("box", name, np.asarray(rows, np.int64), examples)
        for name, rows in sorted(groups.items())
    ]


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    return None


def _metadata_slices(
    population: _Population, images: dict[str, Record], examples: int
) -> list[Blindspot]:
    values: dict[str, list[tuple[int, str]]] = {}
    for row, record in enumerate(population.records):
        image = images.get(record.image_id)
        fields = [(f"object {k}", v) for k, v in record.metadata.items()]
        if image is not None:
            fields += [(f"image {k}", v) for k, v in image.metadata.items()]
        for key, value in fields:
            text = _scalar(value)
            if key.split(" ", 1)[1] not in SKIPPED_FIELDS and text is not None:
                values.setdefault(key, []).append((row, text))
    spots = []
    for key, pairs in sorted(values.items()):
        distinct = {text for _row, text in pairs}
        if not 2 <= len(distinct) <= MAX_VALUES:
            continue  # one value slices nothing; many are ids
        groups = _group((row, [f"{key} = {text}"]) for row, text in pairs)
        spots += [
            population.spot("metadata", name, np.asarray(rows, np.int64), examples)
            for name, rows in sorted(groups.items())
        ]
    return spots
