"""How often would ``match`` call an unseen photo a copy? Asked of the collection itself.

Duplicate detection's threshold is fitted to a precision over pairs
(:mod:`pixseek.jobs.calibrate`). An outside image that copies nothing is compared with
every collection image, and a look-alike (two side views of motorbikes on white, the same
metronome on another background) is enough for a false alarm: at the thumbnail
descriptor's pair threshold, 6 of 200 unseen Caltech photos matched something
(``bench/copydetect.py``).

So each of up to :data:`QUERIES` collection images is asked as if it were unseen: its
nearest other image as match would find it (as it is against the images and their kept
views; its own turned and centre views, which the kept views hold, against the images),
leaving out what is presumed its copy: the same bytes, a perceptual hash within
``SAME_PICTURE_BITS``, or a score that most of the calibration's edited copies reach
(``CopyCalibration.presumed_copy``, where the model sets copies apart from unrelated
images), so that a collection full of its own copies does not read as full of look-alikes.
The threshold is then raised until at most ``1 - target precision`` of them match another
image, and the pHash radius lowered likewise, among each one's embedding candidates (where
match compares hashes: the query's own, and its turned and centre views', kept with them).
Each tier gets that share (half of it each cost 5 points of top-1 for one false alarm in
200 fewer with the thumbnail descriptor: the estimate's tail is coarse at a few hundred
images). The threshold so never rises above the presumed-copy score: match keeps most of
the copies calibration found.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from pixseek.collection.collection import Collection
from pixseek.collection.index import Index
from pixseek.core.calibration import CopyCalibration, FalseAlarms
from pixseek.core.errors import CollectionBusyError
from pixseek.core.filters import Filter
from pixseek.core.ids import in_content_order
from pixseek.core.records import Record
from pixseek.imaging.hashes import PHASH_BITS, ImageHashes, hamming, same_picture
from pixseek.imaging.views import COPY_VIEWS
from pixseek.jobs.copy_views import KeptViews, has_kept_views, kept_views
from pixseek.stores.base import ScoredRecords
from pixseek.stores.knn import search_many

QUERIES = 2000  # collection images asked as if unseen: a rate of 1 in 200 is seen 10 times
# the query views match embeds (imaging.views.QUERY_VIEWS) that the kept views also hold
KEPT_QUERY_VIEWS = ("rotated -10°", "rotated +10°", "centre")
CANDIDATES = 20  # nearest images match compares with an outside image (MatchOptions)
REMEASURE_GROWTH = 1.25  # the collection grew or shrank by this factor: ask again
KEEP_WAIT_S = 1.0  # for the collection's write lock, to keep what was measured


def false_alarms_of(
    collection: Collection,
    index: Index,
    calibration: CopyCalibration,
    views: bool,
    candidates: int,
) -> FalseAlarms:
    """The index's match levels, measured now (and kept with its calibration) when none
    were for ``views`` (where views are kept) or the collection has grown or shrunk much
    since."""
    # the file's signature only: reading 700,000 views takes seconds, which a query found
    # as it is never needs
    with_views = views and has_kept_views(collection, index)
    known = _fitting(calibration, with_views, index.store.count())
    if known is not None:
        return known
    kept = kept_views(collection, index) if with_views else None
    measured = measure(collection, index, calibration, kept, candidates)
    others = [k for k in calibration.false_alarms if k.views != measured.views]
    try:  # a query does not wait for another process's long write: kept next time
        with collection.writing(timeout=KEEP_WAIT_S):
            collection.set_calibration(
                index.name, replace(calibration, false_alarms=[*others, measured])
            )
    except CollectionBusyError:
        pass
    return measured


def _fitting(calibration: CopyCalibration, views: bool, records: int) -> FalseAlarms | None:
    """The kept levels measured with (or without) views on a collection of about
    ``records`` (the store's unfiltered count: kept by the store, not a scan)."""
    for known in calibration.false_alarms:
        grown = max(records, 1) / max(known.records, 1)
        if known.views == views and 1 / REMEASURE_GROWTH <= grown <= REMEASURE_GROWTH:
            return known
    return None


def keep_levels(collection: Collection) -> list[tuple[str, FalseAlarms]]:
    """Measure now, for every calibrated index, the levels the next match would use (with
    the views, where kept) where none kept fit the collection as it is: after an index run
    or the views job, so that no query pays for it (2 s at 100,000 images, 5 to 8 s more
    with their views). Returns those measured."""
    done = []
    for name, index in sorted(collection.indexes.items()):
        calibration = index.entry.calibration
        if not index.ready or calibration is None:
            continue
        # as match asks (views where kept): what comes back is one of the kept, or new
        levels = false_alarms_of(collection, index, calibration, True, CANDIDATES)
        if all(levels is not known for known in calibration.false_alarms):
            done.append((name, levels))
    return done


def measure(
    collection: Collection,
    index: Index,
    calibration: CopyCalibration,
    kept: KeptViews | None,
    candidates: int,
) -> FalseAlarms:
    """Ask up to :data:`QUERIES` collection images as if unseen (see the module)."""
    count = index.store.count()
    # an older calibration (no presumed-copy score: `pixseek calibrate` measures one), or
    # nothing to ask: the duplicates levels
    unmeasured = FalseAlarms(
        calibration.threshold, calibration.hashes.radius, 0.0, 0, count, kept is not None
    )
    if not calibration.presumed_copy:
        return unmeasured
    records = _queries(index)
    stored = index.store.get_vectors([r.id for r in records])
    records = [r for r in records if r.id in stored]
    if not records:
        return unmeasured
    vectors = np.stack([np.asarray(stored[r.id], np.float32) for r in records])
    unlike = _Unlike(calibration.presumed_copy)
    best, bits = _nearest_others(index, records, vectors, candidates, unlike)
    if kept is not None:
        through = _through_kept(collection, records, vectors, kept, candidates, unlike)
        seen, seen_bits = _own_views(index, records, kept, candidates, unlike)
        best = np.maximum(best, np.maximum(through, seen))
        bits = np.minimum(bits, seen_bits)
    share = 1 - calibration.target_precision
    threshold = max(calibration.threshold, _above(best, math.floor(share * len(records))))
    radius = hash_radius(bits, share, calibration.hashes.radius)
    at_pairs = (best >= calibration.threshold) | (bits <= calibration.hashes.radius)
    return FalseAlarms(
        threshold=math.ceil(threshold * 1e6) / 1e6,
        radius=radius,
        rate=round(float(at_pairs.mean()), 4),
        queries=len(records),
        records=count,
        views=kept is not None,
    )


def _queries(index: Index) -> list[Record]:
    """Up to :data:`QUERIES` image records, in an order fixed by their content."""
    records = [r for batch, _ in index.store.scan(Filter.where({"kind": "image"})) for r in batch]
    return in_content_order(records, "alarms")[:QUERIES]


@dataclass(frozen=True, slots=True)
class _Unlike:
    """Is an image near a query another picture, not presumed a copy of it?"""

    presumed_copy: float

    def __call__(self, query: Record, other: Record, score: float) -> bool:
        if score >= self.presumed_copy or query.id == other.id:
            return False
        return not same_picture(query, other)


def _fold(
    best: NDArray[np.float64],
    bits: NDArray[np.int64],
    row: int,
    query: Record,
    phash: int | None,
    hits: ScoredRecords,
    unlike: _Unlike,
) -> None:
    """Into ``row`` of ``best`` and ``bits``: the best score of the ``hits`` not presumed
    the query's copy, and the nearest of their pHashes to ``phash`` (the query's, or one of
    its views')."""
    for other, score in hits:
        if not unlike(query, other, score):
            continue
        best[row] = max(best[row], score)
        theirs = ImageHashes.decode(other.hashes)
        if phash is not None and theirs is not None:
            bits[row] = min(bits[row], hamming(phash, theirs.phash))


def _nearest_others(
    index: Index,
    records: Sequence[Record],
    vectors: NDArray[np.float32],
    candidates: int,
    unlike: _Unlike,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Each query's best score against another image, and its nearest pHash among its
    embedding candidates (PHASH_BITS + 1 where none has a hash)."""
    found = search_many(index.store, vectors, candidates + 1, Filter.where({"kind": "image"}))
    best = np.full(len(records), -1.0)
    bits = np.full(len(records), PHASH_BITS + 1, np.int64)
    for row, (record, hits) in enumerate(zip(records, found, strict=True)):
        own = ImageHashes.decode(record.hashes)
        _fold(best, bits, row, record, own.phash if own is not None else None, hits, unlike)
    return best, bits


def _through_kept(
    collection: Collection,
    records: Sequence[Record],
    vectors: NDArray[np.float32],
    kept: KeptViews,
    candidates: int,
    unlike: _Unlike,
) -> NDArray[np.float64]:
    """Each query as it is against the other images' kept views (its own seven among the
    nearest, so that many more are asked for)."""
    rows, scores = kept.nearest.search(vectors, candidates + len(COPY_VIEWS))
    owners = collection.get_many(sorted({str(kept.ids[r]) for r in rows.ravel() if r >= 0}))
    best = np.full(len(records), -1.0)
    for n, record in enumerate(records):
        for row, score in zip(rows[n].tolist(), scores[n].tolist(), strict=True):
            owner = owners.get(str(kept.ids[row])) if row >= 0 else None
            if owner is not None and unlike(record, owner, float(score)):
                best[n] = max(best[n], float(score))
    return best


def _own_views(
    index: Index, records: Sequence[Record], kept: KeptViews, candidates: int, unlike: _Unlike
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Each query's own turned and centre views (kept) against the other images, as match
    embeds them for an outside image that matched nothing as it is: the best score, and
    the nearest pHash of a view (where its hash is kept) among that view's candidates."""
    offsets = [COPY_VIEWS.index(name) for name in KEPT_QUERY_VIEWS]
    wanted: list[tuple[int, int]] = []  # (query, kept row)
    for n, record in enumerate(records):
        first = int(np.searchsorted(kept.ids, record.id))
        if first < len(kept.ids) and str(kept.ids[first]) == record.id:
            wanted += [(n, first + offset) for offset in offsets]
    best = np.full(len(records), -1.0)
    bits = np.full(len(records), PHASH_BITS + 1, np.int64)
    if not wanted:
        return best, bits
    views = np.asarray(kept.vectors[[row for _, row in wanted]], np.float32)
    found = search_many(index.store, views, candidates + 1, Filter.where({"kind": "image"}))
    for (n, row), hits in zip(wanted, found, strict=True):
        phash = int(kept.phashes[row]) if kept.phash_known[row] else None
        _fold(best, bits, n, records[n], phash, hits, unlike)
    return best, bits


def _above(best: NDArray[np.float64], allowed: int) -> float:
    """The lowest cosine that at most ``allowed`` of the scores reach."""
    ranked = np.sort(best)[::-1]
    if allowed >= len(ranked):
        return -1.0
    return float(ranked[allowed]) + 1e-6


def hash_radius(bits: NDArray[np.int64], share: float, widest: int) -> int:
    """The widest radius, up to ``widest``, that at most ``share`` of the queries' nearest
    hashes fall within (-1: none), counting only queries with a hash to compare (images
    indexed before hashes were kept, or whose candidates have none, would dilute it)."""
    bits = bits[bits <= PHASH_BITS]
    if not len(bits):
        return widest  # nothing to measure, and nothing for match to compare either
    allowed = math.floor(share * len(bits))
    for radius in range(widest, -1, -1):
        if int(np.sum(bits <= radius)) <= allowed:
            return radius
    return -1
