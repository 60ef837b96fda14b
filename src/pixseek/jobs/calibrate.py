"""Measure, for one index, at what similarity its model sees a copy: no hand-set threshold.

A sample of the collection's own images is edited the ways copies are (see
:mod:`pixseek.imaging.edits`), the edits are embedded, and each is compared with its
source (a copy) and with its nearest other images (not copies, as far as anyone knows).
From those scores come the cosine that reaches the target precision, the precision and
recall there (overall and by edit), the probability that a pair at a score is a copy, and
the same for the perceptual-hash distance. Precision counts each copy's ``neighbours``
nearest images, the pairs that duplicate detection looks at.

Duplicate detection also compares views of each image (turned, cut to its corners: see
:mod:`pixseek.imaging.views`) with the other images, so calibration measures the same: a
copy's score is its best against its source and the source's views, and the views' own
nearest other images count among the pairs that are not copies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pixseek.collection.collection import Collection
from pixseek.collection.index import Index
from pixseek.core.calibration import CopyCalibration, HashCalibration
from pixseek.core.errors import CalibrationError, ImageDecodeError, InvalidInputError
from pixseek.core.filters import Filter
from pixseek.core.ids import in_content_order
from pixseek.core.paths import local_path
from pixseek.core.records import Record
from pixseek.core.vectors import Vectors
from pixseek.imaging.decode import decode_options_for, load_image_file
from pixseek.imaging.edits import EDITS, edited
from pixseek.imaging.hashes import (
    PHASH_BITS,
    SAME_PICTURE_BITS,
    ImageHashes,
    binary_codes,
    hamming,
    hamming_matrix,
    image_hashes,
    same_picture,
)
from pixseek.imaging.views import COPY_VIEWS, views
from pixseek.jobs.copy_views import kept_views
from pixseek.jobs.false_alarms import CANDIDATES
from pixseek.jobs.false_alarms import measure as measure_false_alarms
from pixseek.jobs.precision import CONFIDENCE_Z, fit_threshold, scored_pairs
from pixseek.jobs.text_cutoff import measure_text_cutoff
from pixseek.stores.knn import exact_neighbours, load_all, search_many

MIN_IMAGES = 6
CURVE_POINTS = 48
# A collection being de-duplicated is full of its own copies: an image is presumed a copy
# of a sampled one (and so no evidence against a threshold) only when it is closer to it
# than any edited copy of another sampled image is, and at least as close as most of its
# own edited copies are: one edit a model cannot see through must not make every near
# image a copy (see Sample.presumed_copy)
WEAKEST_QUANTILE = 25.0
FAMILY_PARTNERS = 0.1  # of the sample: how many may be copies of one sampled image
# of the sample: how many other sampled images' copies may hash as one of an image's
# copies before hashes are taken to say nothing there. Copies of one picture seldom make a
# quarter of a collection; pictures whose hashes coincide (blank pages) can; and a sample
# of 40 from a collection where each photo has ten versions met five of one family.
HASH_PARTNERS = 0.25
# scores this high among the sample's copies and their sources (a quantile of them) are
# "the same picture" to the model: an image that close to an edited copy is a copy too
IDENTICAL_QUANTILE = 75.0
# ... unless this share of edited copies of different images come as close to each other
# (a few sampled images may be copies of one another)
BETWEEN_QUANTILE = 90.0


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


# of the copies, the share a threshold is expected to keep above it (a sample is sized so
# that those alone can show the target precision)
EXPECTED_RECALL = 0.5


def sample_size(options: CalibrationOptions) -> int:
    """``options.sample``, or more images where their copies could not show the target
    precision: with ``n`` copies above a threshold and no other pair, the lower end of the
    precision's Wilson interval is ``n / (n + z^2)``, so 0.999 needs some 700 of them (59
    images' worth when every copy is kept, 118 at half of them); 40 images could show at
    most 0.998 and a target of 0.999 turned every tier off."""
    target = options.target_precision
    copies = CONFIDENCE_Z**2 * target / (1 - target) / EXPECTED_RECALL
    return max(options.sample, math.ceil(copies / len(EDITS)))


def probability_curve(
    positives: NDArray[np.floating],
    negatives: NDArray[np.floating],
    weights: NDArray[np.floating] | None = None,
) -> tuple[list[float], list[float]]:
    """P(copy | score) by isotonic regression (SciPy's), thinned to a few increasing
    breakpoints; ``weights`` as in :func:`fit_threshold`."""
    from scipy.optimize import isotonic_regression

    scores, labels, counts = scored_pairs(positives, negatives, weights)
    order = np.argsort(scores, kind="stable")
    fitted = isotonic_regression(labels[order], weights=counts[order], increasing=True).x
    xs, last = np.unique(scores[order][::-1], return_index=True)  # last of each tie
    ys = fitted[::-1][last]
    keep = np.unique(np.linspace(0, len(xs) - 1, min(len(xs), CURVE_POINTS)).round().astype(int))
    return [round(float(x), 6) for x in xs[keep]], [round(float(y), 4) for y in ys[keep]]


def sample_images(index: Index, count: int, seed: int) -> list[Record]:
    """Up to ``count`` image records whose files can be read, in an order fixed by a hash
    of their content."""
    records = [r for batch, _ in index.store.scan(Filter.where({"kind": "image"})) for r in batch]
    return [r for r in in_content_order(records, str(seed)) if local_path(r.path).is_file()][:count]


@dataclass(slots=True)
class Copies:
    images: list[Image.Image]
    sources: list[int]  # row in the sample
    edits: list[str]
    views: list[Image.Image]  # COPY_VIEWS of each sampled image, in order


def make_copies(
    records: Sequence[Record], input_size: int | None, seed: int
) -> tuple[list[Record], Copies]:
    decode = decode_options_for(input_size)
    kept: list[Record] = []
    copies = Copies([], [], [], [])
    for record in records:
        try:
            image = load_image_file(local_path(record.path), decode)
        except (ImageDecodeError, OSError):
            continue
        row = len(kept)
        kept.append(record)
        copies.views += [picture for _, picture, _ in views(image, COPY_VIEWS)]
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
    """Measure copy detection for ``index`` (the active one by default), and match's
    levels for outside images from it (:mod:`pixseek.jobs.false_alarms`), and keep the
    result with it; returns it."""
    index = index or collection.index()
    records = sample_images(index, sample_size(options), options.seed)
    embedder = index.embedder
    kept, copies = make_copies(records, embedder.capabilities.input_size, options.seed)
    if len(kept) < MIN_IMAGES:
        raise CalibrationError(
            f"copy calibration needs at least {MIN_IMAGES} images whose files can be read; "
            f"this index has {len(kept)}: give --threshold instead"
        )
    if progress is not None:
        progress(
            f"embedding {len(copies.images)} edited copies of {len(kept)} images "
            f"and {len(copies.views)} views of them"
        )
    vectors = embedder.embed_images(copies.images)
    seen = embedder.embed_images(copies.views).reshape(len(kept), len(COPY_VIEWS), -1)
    sources = index.store.get_vectors([r.id for r in kept])
    source_rows = np.stack([sources[r.id] for r in kept])
    plain = np.einsum("ij,ij->i", vectors, source_rows[copies.sources])
    through_views = np.einsum("cvd,cd->cv", seen[copies.sources], vectors).max(axis=1)
    positives = np.maximum(plain, through_views)
    source_hashes = [stored_hashes(r) for r in kept]
    sample = Sample(kept, source_hashes, source_rows, seen, vectors, positives, copies)
    bars = sample.bars()
    negatives, weights, nearest = _negatives(index, sample, bars, options)
    fit = fit_threshold(positives, negatives, options.target_precision, weights)
    unrelated = float(np.percentile(nearest, 99))  # the copies' nearest unrelated images
    curve = probability_curve(positives, negatives, weights)
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
        lowest_by_edit={
            name: math.floor(float(positives[edits == name].min()) * 1e6) / 1e6
            for name in EDITS
            if np.any(edits == name)
        },
        curve_scores=curve[0],
        curve_probabilities=curve[1],
        unrelated=round(unrelated, 6),
        images=len(kept),
        copies=len(copies.images),
        neighbours=options.neighbours,
        hashes=_hash_calibration(index, sample, bars, options),
        views=list(COPY_VIEWS),
        presumed_copy=_presumed_copy(positives, unrelated),
        text=measure_text_cutoff(index, options.target_precision),
    )
    alarms = measure_false_alarms(
        collection, index, calibration, kept_views(collection, index), CANDIDATES
    )
    calibration = replace(calibration, false_alarms=[alarms])
    collection.set_calibration(index.name, calibration)
    return calibration


def _presumed_copy(positives: NDArray[np.floating], unrelated: float) -> float:
    """The score that all but the hardest edited copies (:data:`WEAKEST_QUANTILE`) reach,
    when it stands above the copies' nearest unrelated images (``unrelated``: their 99th
    percentile); else 2: a model that puts unrelated images among the copies presumes
    nothing."""
    level = float(np.percentile(positives, WEAKEST_QUANTILE))
    return round(level, 6) if level > unrelated else 2.0


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


@dataclass(frozen=True, slots=True)
class Bars:
    """When an image near a sampled one is presumed one of its copies
    (:meth:`Sample.presumed_copy`)."""

    weakest: NDArray[np.float64]  # per sampled image: Sample.weakest
    unrelated: NDArray[np.float64]  # per sampled image: Sample.unrelated_levels
    identical: float  # Sample.identical


@dataclass(frozen=True, slots=True)
class Sample:
    """The sampled images, their hashes, vectors and views' vectors, their edited copies'
    vectors and scores."""

    kept: list[Record]
    hashes: list[ImageHashes | None]
    vectors: NDArray[np.float32]  # (image, dim)
    views: NDArray[np.float32]  # (image, view, dim)
    copy_vectors: NDArray[np.float32]  # (copy, dim)
    positives: NDArray[np.floating]  # each copy's best score against its source
    copies: Copies

    def bars(self) -> Bars:
        weakest = self.weakest()
        return Bars(weakest, self.unrelated_levels(weakest), self.identical())

    def weakest(self) -> NDArray[np.float64]:
        """Per sampled image: the score that all but the hardest edits of it
        (:data:`WEAKEST_QUANTILE`) reach."""
        rows = np.asarray(self.copies.sources)
        found = [self.positives[rows == n] for n in range(len(self.kept))]
        return np.asarray([np.percentile(own, WEAKEST_QUANTILE) for own in found])

    def identical(self) -> float:
        """The score at which this model sees the same picture (:data:`IDENTICAL_QUANTILE`
        of the copies' scores against their sources); above 1 when copies of different
        images come as close to each other, as with a model that sees many photos alike.
        Copies of different sampled images are unrelated pictures that may carry the same
        edit (a text band, a border), and are not other copies in the collection."""
        level = float(np.percentile(self.positives, IDENTICAL_QUANTILE))
        sources = np.asarray(self.copies.sources)
        scores = self.copy_vectors @ self.copy_vectors.T
        scores[sources[:, None] == sources[None, :]] = -1.0
        between = float(np.percentile(scores.max(axis=1), BETWEEN_QUANTILE))
        return level if level > between else 2.0

    def presumed_copy(
        self,
        row: int,
        other: NDArray[np.float32],
        bars: Bars,
        seen_from: tuple[float, float] | None = None,
    ) -> bool:
        """Is an image (its vector) a copy of sampled image ``row`` already in the
        collection? When it is the same picture (:meth:`identical`) as one edited copy of
        it (``seen_from`` that copy: the image's score against it, the copy's own score
        against the source); or when it is at least as close to it as most of its edited
        copies are (:meth:`weakest`) while those stand apart from unrelated images
        (:meth:`unrelated_levels`). A model that puts unrelated images among an image's
        copies presumes nothing: its neighbours all count against the threshold."""
        if seen_from is not None and seen_from[0] >= max(seen_from[1], bars.identical):
            return True
        if float(bars.weakest[row]) <= float(bars.unrelated[row]):
            return False
        return self.closeness(row, other) >= float(bars.weakest[row])

    def unrelated_levels(self, weakest: NDArray[np.float64]) -> NDArray[np.float64]:
        """Per sampled image: how close the closest edited copy of another sampled image
        comes to it (as :meth:`closeness` measures), leaving out the few sampled images
        whose copies come as close as its own (``weakest``): they are copies of one
        another. When more than a few do (:data:`FAMILY_PARTNERS` of the sample), the
        model does not tell this image's copies from unrelated images, and the level is
        the closest of all: nothing is presumed a copy of it."""
        plain = self.vectors @ self.copy_vectors.T
        through_views = np.einsum("svd,cd->svc", self.views, self.copy_vectors).max(axis=1)
        close = np.maximum(plain, through_views)
        count = len(self.kept)
        best = np.full((count, count), -1.0)  # [image, other image]: its closest copy
        np.maximum.at(best.T, np.asarray(self.copies.sources), close.T)
        best[np.arange(count), np.arange(count)] = -1.0
        partners = best >= weakest[:, None]
        few = _few(partners, FAMILY_PARTNERS)
        others = np.where(partners & few[:, None], -1.0, best)
        return np.asarray(others.max(axis=1), np.float64)

    def closeness(self, row: int, other: NDArray[np.float32]) -> float:
        """How close an image (its vector) is to sampled image ``row``, as duplicates see
        it: the best of the image itself and its views."""
        return max(float(other @ self.vectors[row]), float((self.views[row] @ other).max()))


def _negatives(
    index: Index, sample: Sample, bars: Bars, options: CalibrationOptions
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Scores of the pairs that are not copies, how many pairs each stands for, and each
    copy's nearest other image's score.

    Those pairs are each copy's nearest images other than its source, and each view of a
    sampled image's nearest images other than it. Duplicate detection compares every
    image's views as well as the image, so a view's pair stands for as many pairs as the
    sampled image has copies: the mix of pairs is the one duplicates sees.

    A collection being de-duplicated holds copies of its own images. A neighbour that is
    one (the source's bytes, within :data:`SAME_PICTURE_BITS` of its perceptual hash, or
    as the model sees it: :meth:`Sample.presumed_copy`) is what duplicate detection is
    for, not evidence against the threshold, and is left out.
    """
    k = options.neighbours
    dim = sample.views.shape[2]
    found = nearest_images(index, sample.copy_vectors, k * 2 + 1)
    by_view = nearest_images(index, sample.views.reshape(-1, dim), k * 2 + 1)
    wanted = {r.id for hits in [*found, *by_view] for r, _ in hits} | {r.id for r in sample.kept}
    stored = index.store.get_vectors(sorted(wanted))

    def others(hits: list[tuple[Record, float]], row: int, own: float | None) -> list[float]:
        source = sample.kept[row]
        return [
            s
            for r, s in hits
            if r.id != source.id
            and not same_picture(source, r, sample.hashes[row])
            and not sample.presumed_copy(row, stored[r.id], bars, None if own is None else (s, own))
        ][:k]

    scores: list[float] = []
    nearest: list[float] = []
    for hits, row, own in zip(found, sample.copies.sources, sample.positives.tolist(), strict=True):
        kept = others(hits, row, own)
        scores += kept
        nearest.append(kept[0] if kept else -1.0)
    plain = len(scores)
    for number, hits in enumerate(by_view):
        scores += others(hits, number // len(COPY_VIEWS), None)
    weights = np.ones(len(scores))
    weights[plain:] = len(sample.copies.images) / max(1, len(sample.kept))
    return np.asarray(scores), weights, np.asarray(nearest)


def _few_hash_partners(
    copy_hashes: Sequence[ImageHashes], sources: Sequence[int], count: int
) -> NDArray[np.bool_]:
    """Per sampled image: is an image within :data:`SAME_PICTURE_BITS` of one of its edited
    copies the same picture as that copy (a copy already in the collection, such as the same
    mirror image), not an unrelated one? So when the copies of few other sampled images
    (:data:`HASH_PARTNERS` of the sample: copies of one another) come that close to its
    copies. Where hashes of unrelated pictures coincide (blank pages, plain backgrounds),
    the copies of many do, and such a neighbour counts against the radius."""
    codes = np.asarray([h.phash for h in copy_hashes], np.uint64)
    rows = np.asarray(sources)
    partners = np.zeros((count, count), bool)  # [image, other image]: copies that close
    for start in range(0, len(codes), 1024):  # a block of copies at a time: bounded memory
        close = hamming_matrix(codes[start : start + 1024], codes) <= SAME_PICTURE_BITS
        block = rows[start : start + 1024]
        np.logical_or.at(partners, (block[:, None], rows[None, :]), close)
    partners[np.arange(count), np.arange(count)] = False
    return _few(partners, HASH_PARTNERS)


def _few(partners: NDArray[np.bool_], share: float) -> NDArray[np.bool_]:
    """Per sampled image: are its partners (``partners[image, other image]``, itself not
    among them) at most ``share`` of the sample (and one at least allowed)?"""
    return np.asarray(partners.sum(axis=1) <= max(1, round(share * len(partners))))


def _hash_calibration(
    index: Index, sample: Sample, bars: Bars, options: CalibrationOptions
) -> HashCalibration:
    """The perceptual-hash radius for the target precision: each copy against its source,
    and against the images nearest to it by Hamming distance, leaving out the source and
    copies of it already in the collection (see :func:`same_picture`, images at least as
    close to the source by hash as the copy is, the same picture as the copy where that
    tells copies apart (:func:`_few_hash_partners`), and images the model puts among the
    source's copies: :meth:`Sample.presumed_copy`)."""
    import faiss

    copies, kept, sources = sample.copies, sample.kept, sample.hashes

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
    near = sorted({known[r][0].id for r in rows.reshape(-1).tolist() if r >= 0})
    stored = index.store.get_vectors(near)
    few = _few_hash_partners(copy_hashes, copies.sources, len(kept))
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
            and not same_picture(kept[row], known[r][0], source)
            and not (int(d) <= SAME_PICTURE_BITS and few[row])
            and hamming(known[r][1].phash, source.phash) > own
            and not sample.presumed_copy(row, stored[known[r][0].id], bars)
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
