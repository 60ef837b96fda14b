"""Measure, for one index, at what similarity its model sees a copy: no hand-set threshold.

A sample of the collection's own images is edited the ways copies are (see
:mod:`pixseek.imaging.edits`), the edits are embedded, and each is compared with its
source (a copy) and with its nearest other images (not copies, as far as anyone knows).
From those scores come the cosine that reaches the target precision, the precision and
recall there (overall and by edit), the probability that a pair at a score is a copy, and
the same for the perceptual-hash distance. Precision counts each copy's ``neighbours``
nearest images, the pairs that duplicate detection looks at.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pixseek.collection.collection import Collection
from pixseek.collection.index import Index
from pixseek.core.calibration import CopyCalibration, HashCalibration
from pixseek.core.errors import ImageDecodeError, InvalidInputError
from pixseek.core.filters import Filter
from pixseek.core.ids import content_hash
from pixseek.core.paths import local_path
from pixseek.core.records import Record
from pixseek.imaging.decode import decode_options_for, load_image_file
from pixseek.imaging.edits import EDITS, edited
from pixseek.imaging.hashes import PHASH_BITS, ImageHashes, hamming, image_hashes

MIN_IMAGES = 6
CURVE_POINTS = 48


@dataclass(frozen=True, slots=True)
class CalibrationOptions:
    target_precision: float = 0.99
    sample: int = 40  # images; each gets every edit
    neighbours: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.5 <= self.target_precision < 1.0:
            raise InvalidInputError(f"target precision is in [0.5, 1), got {self.target_precision}")
        if self.sample < MIN_IMAGES:
            raise InvalidInputError(f"calibration samples at least {MIN_IMAGES} images")


@dataclass(frozen=True, slots=True)
class Fit:
    threshold: float
    precision: float
    recall: float


def fit_threshold(
    positives: NDArray[np.floating], negatives: NDArray[np.floating], target: float
) -> Fit:
    """The lowest score at which precision (copies among pairs at or above it) reaches
    ``target``; above every score when none does."""
    scores = np.concatenate([positives, negatives]).astype(np.float64)
    labels = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))])
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    true = np.cumsum(labels)
    pairs = np.arange(1, len(scores) + 1)
    precision = true / pairs
    # the precision a threshold is chosen by is the lower end of its Wilson interval:
    # a few lucky pairs at the edge of a sample must not lower the threshold
    lower = wilson_lower(true, pairs)
    # a threshold sits at the last of a run of equal scores
    last_of_tie = np.append(scores[1:] != scores[:-1], True)
    good = np.flatnonzero(last_of_tie & (lower >= target) & (true > 0))
    if not len(good):
        return Fit(float(scores[0]) + 1e-6, 1.0, 0.0)
    at = int(good[-1])
    return Fit(float(scores[at]), float(precision[at]), float(true[at] / max(1, len(positives))))


CONFIDENCE_Z = 0.8416  # one-sided 80%


def wilson_lower(
    successes: NDArray[np.floating], trials: NDArray[np.integer]
) -> NDArray[np.float64]:
    """The lower end of the Wilson score interval of a proportion."""
    z2 = CONFIDENCE_Z**2
    share = successes / trials
    centre = share + z2 / (2 * trials)
    spread = CONFIDENCE_Z * np.sqrt(share * (1 - share) / trials + z2 / (4 * trials**2))
    return np.asarray((centre - spread) / (1 + z2 / trials), np.float64)


def probability_curve(
    positives: NDArray[np.floating], negatives: NDArray[np.floating]
) -> tuple[list[float], list[float]]:
    """P(copy | score) by isotonic regression, thinned to a few increasing breakpoints."""
    from sklearn.isotonic import IsotonicRegression

    scores = np.concatenate([positives, negatives]).astype(np.float64)
    labels = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))])
    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, labels)
    xs, ys = np.asarray(model.X_thresholds_), np.asarray(model.y_thresholds_)
    keep = np.unique(np.linspace(0, len(xs) - 1, min(len(xs), CURVE_POINTS)).round().astype(int))
    return [round(float(x), 6) for x in xs[keep]], [round(float(y), 4) for y in ys[keep]]


def sample_images(index: Index, count: int, seed: int) -> list[Record]:
    """Up to ``count`` image records whose files can be read, spread by id hash."""
    records = [r for batch, _ in index.store.scan(Filter.where({"kind": "image"})) for r in batch]
    records.sort(key=lambda r: content_hash(f"{seed}:{r.id}".encode()))
    return [r for r in records if local_path(r.path).is_file()][:count]


@dataclass(slots=True)
class Copies:
    images: list[Image.Image]
    sources: list[int]  # row in the sample
    edits: list[str]


def make_copies(
    records: Sequence[Record], input_size: int | None, seed: int
) -> tuple[list[Record], Copies]:
    decode = decode_options_for(input_size)
    kept: list[Record] = []
    copies = Copies([], [], [])
    for record in records:
        try:
            image = load_image_file(local_path(record.path), decode)
        except (ImageDecodeError, OSError):
            continue
        row = len(kept)
        kept.append(record)
        for number, name in enumerate(EDITS):
            copies.images.append(edited(image, name, seed * 100_003 + row * 101 + number))
            copies.sources.append(row)
            copies.edits.append(name)
    return kept, copies


def stored_hashes(record: Record) -> ImageHashes | None:
    found = ImageHashes.decode(record.hashes)
    if found is not None:
        return found
    try:  # indexed before hashes were stored
        return image_hashes(load_image_file(local_path(record.path)))
    except (ImageDecodeError, OSError):
        return None


def calibrate(
    collection: Collection,
    index: Index | None = None,
    options: CalibrationOptions = CalibrationOptions(),
    progress: Callable[[str], None] | None = None,
) -> CopyCalibration:
    """Measure copy detection for ``index`` (the active one by default) and keep the result
    with it; returns it."""
    index = index or collection.index()
    records = sample_images(index, options.sample, options.seed)
    embedder = index.embedder
    kept, copies = make_copies(records, embedder.capabilities.input_size, options.seed)
    if len(kept) < MIN_IMAGES:
        raise InvalidInputError(
            f"copy calibration needs at least {MIN_IMAGES} images whose files can be read; "
            f"this index has {len(kept)}: give --threshold instead"
        )
    if progress is not None:
        progress(f"embedding {len(copies.images)} edited copies of {len(kept)} images")
    vectors = embedder.embed_images(copies.images)
    sources = index.store.get_vectors([r.id for r in kept])
    source_rows = np.stack([sources[r.id] for r in kept])
    positives = np.einsum("ij,ij->i", vectors, source_rows[copies.sources])
    negatives, nearest, neighbour_ids = _negatives(index, vectors, kept, copies, options)
    fit = fit_threshold(positives, negatives, options.target_precision)
    curve = probability_curve(positives, negatives)
    edits = np.asarray(copies.edits)
    by_edit = {
        name: round(float(np.mean(positives[edits == name] >= fit.threshold)), 4) for name in EDITS
    }
    calibration = CopyCalibration(
        threshold=round(fit.threshold, 6),
        target_precision=options.target_precision,
        precision=round(fit.precision, 4),
        recall=round(fit.recall, 4),
        recall_by_edit=by_edit,
        curve_scores=curve[0],
        curve_probabilities=curve[1],
        unrelated=round(float(np.percentile(nearest, 99)), 6),
        images=len(kept),
        copies=len(copies.images),
        neighbours=options.neighbours,
        hashes=_hash_calibration(index, kept, copies, neighbour_ids, options),
    )
    collection.set_calibration(index.name, calibration)
    return calibration


def calibrate_missing(
    collection: Collection, options: CalibrationOptions = CalibrationOptions()
) -> list[tuple[str, CopyCalibration]]:
    """Calibrate every ready index that has no calibration yet and enough images."""
    done = []
    for name, index in sorted(collection.indexes.items()):
        if index.entry.calibration is not None or not index.ready:
            continue
        if index.store.count(Filter.where({"kind": "image"})) < MIN_IMAGES:
            continue
        try:
            done.append((name, calibrate(collection, index, options)))
        except InvalidInputError:
            continue  # too few readable images: calibrated when first needed
    return done


def _negatives(
    index: Index,
    vectors: NDArray[np.float32],
    kept: list[Record],
    copies: Copies,
    options: CalibrationOptions,
) -> tuple[NDArray[np.float64], NDArray[np.float64], list[list[str]]]:
    """Scores of each copy's nearest images other than its source; the nearest one's; ids."""
    images = Filter.where({"kind": "image"})
    scores: list[float] = []
    nearest: list[float] = []
    ids: list[list[str]] = []
    for vector, row in zip(vectors, copies.sources, strict=True):
        source = kept[row].id
        hits = [(r, s) for r, s in index.store.search(vector, options.neighbours + 1, images)]
        others = [(r, s) for r, s in hits if r.id != source][: options.neighbours]
        scores += [s for _, s in others]
        nearest.append(others[0][1] if others else -1.0)
        ids.append([r.id for r, _ in others])
    return np.asarray(scores), np.asarray(nearest), ids


def _hash_calibration(
    index: Index,
    kept: list[Record],
    copies: Copies,
    neighbour_ids: list[list[str]],
    options: CalibrationOptions,
) -> HashCalibration:
    """The perceptual-hash radius for the target precision, on the same pairs."""
    wanted = {i for row in neighbour_ids for i in row}
    others = index.store.get(sorted(wanted))
    known = {i: stored_hashes(r) for i, r in others.items()}
    sources = [stored_hashes(r) for r in kept]
    positives: list[float] = []
    negatives: list[float] = []
    edits: list[str] = []
    for image, row, name, ids in zip(
        copies.images, copies.sources, copies.edits, neighbour_ids, strict=True
    ):
        copy, source = image_hashes(image), sources[row]
        if source is None:
            continue
        positives.append(PHASH_BITS - hamming(copy.phash, source.phash))
        edits.append(name)
        for other_id in ids:
            other = known.get(other_id)
            if other is not None:
                negatives.append(PHASH_BITS - hamming(copy.phash, other.phash))
    pos, neg = np.asarray(positives, np.float64), np.asarray(negatives, np.float64)
    fit = fit_threshold(pos, neg, options.target_precision)
    radius = max(-1, int(np.floor(PHASH_BITS - fit.threshold + 1e-9)))
    names = np.asarray(edits)
    distance = PHASH_BITS - pos
    return HashCalibration(
        radius=radius,
        precision=round(fit.precision, 4),
        recall=round(fit.recall, 4),
        recall_by_edit={
            name: round(float(np.mean(distance[names == name] <= radius)), 4)
            for name in EDITS
            if np.any(names == name)
        },
    )
