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
from pixseek.core.errors import CalibrationError, ImageDecodeError, InvalidInputError
from pixseek.core.filters import Filter
from pixseek.core.ids import content_hash
from pixseek.core.paths import local_path
from pixseek.core.records import Record
from pixseek.core.vectors import Vectors
from pixseek.imaging.decode import decode_options_for, load_image_file
from pixseek.imaging.edits import EDITS, edited
from pixseek.imaging.hashes import (
    PHASH_BITS,
    ImageHashes,
    binary_codes,
    hamming,
    image_hashes,
)
from pixseek.stores.knn import exact_neighbours, load_all, search_many

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
    """P(copy | score) by isotonic regression (SciPy's), thinned to a few increasing
    breakpoints."""
    from scipy.optimize import isotonic_regression

    scores = np.concatenate([positives, negatives]).astype(np.float64)
    labels = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))])
    order = np.argsort(scores, kind="stable")
    fitted = isotonic_regression(labels[order], increasing=True).x
    xs, last = np.unique(scores[order][::-1], return_index=True)  # last of each tie
    ys = fitted[::-1][last]
    keep = np.unique(np.linspace(0, len(xs) - 1, min(len(xs), CURVE_POINTS)).round().astype(int))
    return [round(float(x), 6) for x in xs[keep]], [round(float(y), 4) for y in ys[keep]]


def sample_images(index: Index, count: int, seed: int) -> list[Record]:
    """Up to ``count`` image records whose files can be read, in an order fixed by a hash
    of their content."""
    records = [r for batch, _ in index.store.scan(Filter.where({"kind": "image"})) for r in batch]
    # by the pictures' own content: the same images give the same sample wherever they are
    records.sort(key=lambda r: (content_hash(f"{seed}:{r.content_hash}".encode()), r.id))
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
        raise CalibrationError(
            f"copy calibration needs at least {MIN_IMAGES} images whose files can be read; "
            f"this index has {len(kept)}: give --threshold instead"
        )
    if progress is not None:
        progress(f"embedding {len(copies.images)} edited copies of {len(kept)} images")
    vectors = embedder.embed_images(copies.images)
    sources = index.store.get_vectors([r.id for r in kept])
    source_rows = np.stack([sources[r.id] for r in kept])
    positives = np.einsum("ij,ij->i", vectors, source_rows[copies.sources])
    source_hashes = [stored_hashes(r) for r in kept]
    negatives, nearest = _negatives(index, vectors, positives, kept, source_hashes, copies, options)
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
        hashes=_hash_calibration(index, kept, source_hashes, copies, options),
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
        except CalibrationError:
            continue  # too few readable images: calibrated when first needed
    return done


SAME_PICTURE_BITS = 4  # perceptual hashes this close: a copy already in the collection
IN_MEMORY_UP_TO = 50_000  # images whose vectors are compared in memory at once


def nearest_images(index: Index, queries: Vectors, k: int) -> list[list[tuple[Record, float]]]:
    """The ``k`` nearest images of each query: exact in memory for a collection of up to
    :data:`IN_MEMORY_UP_TO` images, else one batched store search."""
    images = Filter.where({"kind": "image"})
    if index.store.count(images) > IN_MEMORY_UP_TO:
        return search_many(index.store, queries, k, images)
    records, vectors = load_all(index.store, images)
    rows, scores = exact_neighbours(queries, vectors, k)
    return [
        [(records[i], float(s)) for i, s in zip(row, score, strict=True)]
        for row, score in zip(rows.tolist(), scores.tolist(), strict=True)
    ]


def _negatives(
    index: Index,
    vectors: NDArray[np.float32],
    positives: NDArray[np.floating],
    kept: list[Record],
    source_hashes: list[ImageHashes | None],
    copies: Copies,
    options: CalibrationOptions,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Scores of each copy's nearest images other than its source, and the nearest one's.

    A collection being de-duplicated holds copies of its own images. A neighbour that is
    one (the source's bytes, or within :data:`SAME_PICTURE_BITS` of its perceptual hash),
    or that is at least as close to the source as this edited copy of it is, is what
    duplicate detection is for, not evidence against the threshold, and is left out.
    """
    scores: list[float] = []
    nearest: list[float] = []
    found = nearest_images(index, vectors, options.neighbours * 2 + 1)
    stored = index.store.get_vectors(
        sorted({r.id for hits in found for r, _ in hits} | {r.id for r in kept})
    )
    for hits, row, own in zip(found, copies.sources, positives.tolist(), strict=True):
        source, picture = kept[row], source_hashes[row]
        to_source = stored[source.id]
        others = [
            (r, s)
            for r, s in hits
            if r.id != source.id
            and not _same_picture(r, source, picture)
            and float(stored[r.id] @ to_source) < own
        ][: options.neighbours]
        scores += [s for _, s in others]
        nearest.append(others[0][1] if others else -1.0)
    return np.asarray(scores), np.asarray(nearest)


def _same_picture(record: Record, source: Record, picture: ImageHashes | None) -> bool:
    if record.content_hash and record.content_hash == source.content_hash:
        return True
    other = ImageHashes.decode(record.hashes)
    if picture is None or other is None:
        return False
    return hamming(picture.phash, other.phash) <= SAME_PICTURE_BITS


def _hash_calibration(
    index: Index,
    kept: list[Record],
    sources: list[ImageHashes | None],
    copies: Copies,
    options: CalibrationOptions,
) -> HashCalibration:
    """The perceptual-hash radius for the target precision: each copy against its source,
    and against the images nearest to it by Hamming distance (whatever the model thinks),
    leaving out the source and copies of it already in the collection (see
    :func:`_same_picture`, and images at least as close to the source as the copy is)."""
    import faiss

    everything = [
        r for batch, _ in index.store.scan(Filter.where({"kind": "image"})) for r in batch
    ]
    known = [(r, h) for r in everything if (h := stored_hashes(r)) is not None]
    codes = np.asarray([h.phash for _, h in known], np.uint64)
    table = faiss.IndexBinaryFlat(PHASH_BITS)
    table.add(binary_codes(codes))
    copy_hashes = [image_hashes(image) for image in copies.images]
    queries = np.asarray([h.phash for h in copy_hashes], np.uint64)
    wanted = min(len(known), options.neighbours * 2 + 1)
    distances, rows = table.search(binary_codes(queries), wanted)
    positives: list[float] = []
    negatives: list[float] = []
    edits: list[str] = []
    for number, (row, name) in enumerate(zip(copies.sources, copies.edits, strict=True)):
        source, copy = sources[row], copy_hashes[number]
        if source is None:
            continue
        own = hamming(copy.phash, source.phash)
        positives.append(PHASH_BITS - own)
        edits.append(name)
        others = [
            int(d)
            for d, r in zip(distances[number], rows[number], strict=True)
            if r >= 0
            and not _same_picture(known[r][0], kept[row], source)
            and hamming(known[r][1].phash, source.phash) > own
        ][: options.neighbours]
        negatives += [PHASH_BITS - d for d in others]
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
