"""Which collection images does an outside image copy? The unauthorised-use check.

Tiers, strongest first: the same bytes (exact: found among the embedding candidates,
since the same bytes embed the same way); the same picture after re-encoding,
resizing or small edits (perceptual hashes within the calibrated radius, compared with
the hashes stored at ingest: no collection file is read); or an embedding at or above the
calibrated threshold, to a collection image or, when the collection has region windows or
objects, to a part of one (a crop; the part's box is reported). When the query as it is
matches nothing, it is compared with the views of the collection's images that duplicate
detection keeps (:mod:`pixseek.jobs.copy_views`: a corner crop is close to that corner),
and then a few views of it are embedded too (turned back by small rotations, its centre,
mirrored): copies that were rotated, cropped or framed are found without paying for those
views on every query. When no views are kept, the first query that matches nothing as it is
makes them (for up to :data:`VIEWS_MADE_UP_TO` images; once, kept for every later query
and for duplicates): a corner crop has nothing else to be found by.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pixseek.collection.collection import Collection
from pixseek.collection.index import Index
from pixseek.core.errors import ImageDecodeError, InvalidInputError
from pixseek.core.filters import Filter
from pixseek.core.ids import content_hash
from pixseek.core.records import BoxTuple, Record, record_dict
from pixseek.core.vectors import Vectors
from pixseek.imaging.decode import decode_image, decode_options_for, read_image_file
from pixseek.imaging.hashes import ImageHashes, hamming, perceptual_hash, phash_score
from pixseek.imaging.views import (
    CENTRE,
    COPY_VIEWS,
    PARTS,
    QUERY_VIEWS,
    UNDOES,
    enough_for,
    part_box,
    views,
)
from pixseek.jobs.copy_views import (
    KeptViews,
    Progress,
    has_kept_views,
    kept_views,
    view_vectors,
)
from pixseek.jobs.dedup import TIER_RANK, CopyRule, copy_rule
from pixseek.jobs.false_alarms import CANDIDATES, false_alarms_of
from pixseek.stores.knn import search_many

# images: a first unmatched query makes the views of a collection this size (seven
# embeddings an image, once); beyond, only views made by ``pixseek index --views``,
# duplicates or the views job are used, since that query would take hours on a CPU
VIEWS_MADE_UP_TO = 10_000
KEPT, MADE, MISSING, OFF = "kept", "made", "missing", "off"
_Item = TypeVar("_Item")


@dataclass(frozen=True, slots=True)
class MatchOptions:
    """``threshold`` (cosine) and ``phash_distance`` (bits): None takes the index's
    calibrated values; ``views``: compare a query that matches nothing as it is with the
    collection's kept views and try its own rotated and centre views; ``make_views_up_to``:
    when no views are kept, make them if the collection has at most this many images (0:
    never, as a server request does; the views job makes them there)."""

    threshold: float | None = None
    phash_distance: int | None = None
    candidates: int = CANDIDATES
    views: bool = True
    make_views_up_to: int = VIEWS_MADE_UP_TO

    def __post_init__(self) -> None:
        if self.threshold is not None and not -1.0 <= self.threshold <= 1.0:
            raise InvalidInputError(f"threshold is a cosine in [-1, 1], got {self.threshold}")
        if not 1 <= self.candidates <= 1000:
            raise InvalidInputError("candidates is 1 to 1000")
        if self.make_views_up_to < 0:
            raise InvalidInputError("make_views_up_to is a number of images, at least 0")


@dataclass(frozen=True, slots=True)
class Match:
    record: Record  # the collection image that is copied
    tier: str
    score: float
    probability: float | None = None  # calibrated P(copy)
    # or "region"/"object": a part of the image matched (a crop); "<name> view": a view of
    # the image kept by duplicates (a corner: a crop of it; a turn: a turned copy)
    via: str = "image"
    box: BoxTuple | None = None  # that part, in the collection image's pixels
    view: str = "as is"  # the view of the query that matched

    def to_dict(self) -> dict[str, Any]:
        return {
            "record": record_dict(self.record),
            "tier": self.tier,
            "score": self.score,
            "probability": self.probability,
            "via": self.via,
            "box": list(self.box) if self.box is not None else None,
            "view": self.view,
        }


@dataclass(frozen=True, slots=True)
class MatchResult:
    matches: list[Match]
    threshold: float
    phash_distance: int
    calibrated: bool
    # the collection's kept views: "kept", "made" (by this query), "missing" (none kept:
    # corner crops cannot be found) or "off"
    views: str = KEPT

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "phash_distance": self.phash_distance,
            "calibrated": self.calibrated,
            "views": self.views,
            "matches": [m.to_dict() for m in self.matches],
        }


class _Matcher:
    def __init__(
        self,
        collection: Collection,
        index: Index,
        options: MatchOptions,
        rule: CopyRule,
        digest: str = "",
    ) -> None:
        self.collection = collection
        self.digest = digest
        self.index = index
        self.options = options
        self.rule = rule
        self.found: dict[str, Match] = {}

    def offer(self, match: Match) -> None:
        current = self.found.get(match.record.id)
        if current is None or (TIER_RANK[match.tier], -match.score) < (
            TIER_RANK[current.tier],
            -current.score,
        ):
            self.found[match.record.id] = match

    def search(self, vectors: Vectors, phashes: list[int], views: list[str]) -> None:
        """Every view's image and part candidates, in one store call each."""
        store = self.index.store
        images = Filter.where({"kind": "image"})
        found = search_many(store, vectors, self.options.candidates, images)
        for hits, phash, view in zip(found, phashes, views, strict=True):
            for record, score in hits:
                self._image_candidate(record, score, phash, view)
        objects = Filter.where({"kind": "object"})
        for hits, view in zip(
            search_many(store, vectors, self.options.candidates, objects), views, strict=True
        ):
            self._part_candidates([(r, s) for r, s in hits if s >= self.rule.threshold], view)

    def _image_candidate(self, record: Record, score: float, phash: int, view: str) -> None:
        if self.digest and record.content_hash == self.digest:
            self.offer(Match(record, "exact", 1.0, 1.0, view=view))
        if score >= self.rule.threshold:
            probability = self.rule.probability("embedding", score)
            self.offer(Match(record, "embedding", round(score, 6), probability, view=view))
        stored = ImageHashes.decode(record.hashes)
        if stored is not None and hamming(phash, stored.phash) <= self.rule.phash_distance:
            value = round(phash_score(phash, stored.phash), 6)
            self.offer(
                Match(record, "phash", value, self.rule.probability("phash", value), view=view)
            )

    def search_kept(self, vector: NDArray[np.float32], kept: KeptViews) -> None:
        """The collection images whose kept views (a corner, a turn: see
        :mod:`pixseek.jobs.copy_views`) are close to the query: a crop of one corner of a
        collection image is close to that corner."""
        rows, scores = kept.nearest.search(vector[None, :], self.options.candidates)
        best = [
            (row, score)
            for row, score in zip(rows[0].tolist(), scores[0].tolist(), strict=True)
            if row >= 0 and score >= self.rule.threshold
        ]
        images = self.collection.get_many(sorted({str(kept.ids[row]) for row, _ in best}))
        for row, score in best:
            record = images.get(str(kept.ids[row]))
            if record is None or record.content_hash != str(kept.hashes[row]):
                continue  # removed, or changed since its views were made
            name = COPY_VIEWS[int(kept.names[row])]
            box = part_box(PARTS[name], record.width, record.height) if name in PARTS else None
            probability = self.rule.probability("embedding", score)
            self.offer(
                Match(record, "embedding", round(score, 6), probability, f"{name} view", box)
            )

    def _part_candidates(self, parts: list[tuple[Record, float]], view: str) -> None:
        if not parts:
            return
        parents = self.collection.get_many([r.image_id for r, _ in parts])
        for record, score in parts:
            parent = parents.get(record.image_id)
            if parent is not None:
                via = record.source or "object"
                probability = self.rule.probability("embedding", score)
                self.offer(
                    Match(parent, "embedding", round(score, 6), probability, via, record.box, view)
                )


# queries embedded in one model call by match_files: with ViT-B/32's geometry on 2 cores,
# 16 to 64 took alike, 1.6 times faster than one at a time (bench/copydetect.py, README)
MATCH_BATCH = 32


@dataclass(frozen=True, slots=True)
class _Query:
    digest: str  # of the bytes: the same bytes are an exact copy
    image: Image.Image


class _Session:
    """One run of queries against an index: the copy rule and the kept views are settled
    once, and each batch of queries is embedded in one model call (and their views, for
    those that match nothing as they are, in one more)."""

    def __init__(
        self,
        collection: Collection,
        index: Index,
        options: MatchOptions,
        progress: Progress | None,
    ) -> None:
        measure = options.threshold is None or options.phash_distance is None
        rule = copy_rule(collection, index, options.threshold, options.phash_distance, measure)
        self.rule = _outside_rule(collection, index, options, rule) if measure else rule
        self.collection, self.index, self.options = collection, index, options
        self.progress = progress
        self.state = _views_state(collection, index, options)
        self.decode = decode_options_for(index.embedder.capabilities.input_size)

    def query(self, data: bytes) -> _Query:
        return _Query(content_hash(data), decode_image(data, self.decode))

    def match(self, queries: Sequence[_Query]) -> list[MatchResult]:
        # the same bytes embed the same way, so exact copies are among the first
        # candidates: no scan of the collection by content hash
        vectors = self.index.embedder.embed_images([q.image for q in queries])
        matchers = []
        for query, vector in zip(queries, vectors, strict=True):
            matcher = _Matcher(self.collection, self.index, self.options, self.rule, query.digest)
            matcher.search(vector[None, :], [perceptual_hash(query.image)], ["as is"])
            matchers.append(matcher)
        made = self.state
        unmatched = [n for n, matcher in enumerate(matchers) if not matcher.found]
        if self.options.views and unmatched:
            made = self._views_for_unmatched()
            kept = kept_views(self.collection, self.index)
            if kept is not None:  # no embedding to pay for: before the queries' own views
                for n in unmatched:
                    matchers[n].search_kept(vectors[n], kept)
            self._query_views(
                [(matchers[n], queries[n].image) for n in unmatched if not matchers[n].found],
                self._worth_embedding(kept is not None),
            )
        # a query matched as it is says whether views are kept now (made for others of
        # its batch: kept), not "missing"
        return [
            self._result(matcher, made if n in unmatched else self.state)
            for n, matcher in enumerate(matchers)
        ]

    def _views_for_unmatched(self) -> str:
        """The views state for queries that matched nothing as they are: when none are
        kept, the first such query makes them (see :data:`VIEWS_MADE_UP_TO`)."""
        if self.state != MISSING:
            return self.state
        made = _make_views(self.collection, self.index, self.options, self.progress)
        if made == MADE:
            self.state = KEPT  # for the queries after these
        return made

    def _worth_embedding(self, kept: bool) -> tuple[str, ...]:
        """The query views worth an embedding each. One is left out where the index's
        calibration found every copy made with the edit it undoes without it, at the
        threshold in use (its lowest score reaches it): a model that sees a mirror image
        as the same picture needs no mirrored view, and an unseen photo, which tries them
        all, costs that much less. Calibration scores copies against the kept views too,
        so only where those are searched."""
        calibration = self.rule.calibration
        if calibration is None or self.options.threshold is not None or not kept:
            return QUERY_VIEWS
        lowest = calibration.lowest_by_edit
        return tuple(v for v in QUERY_VIEWS if lowest.get(UNDOES[v], -1.0) < self.rule.threshold)

    def _query_views(
        self, pending: list[tuple[_Matcher, Image.Image]], names: tuple[str, ...]
    ) -> None:
        """The queries' own views (``names``: turned back, their centre, mirrored), in one
        model call."""
        if not pending or not names:
            return
        size = self.index.embedder.capabilities.input_size
        shown = [views(enough_for(image, size, CENTRE), names) for _, image in pending]
        vectors = self.index.embedder.embed_images([p for each in shown for _, p, _ in each])
        count = len(names)
        for n, ((matcher, _), each) in enumerate(zip(pending, shown, strict=True)):
            matcher.search(
                vectors[n * count : (n + 1) * count],
                [perceptual_hash(picture) for _, picture, _ in each],
                [name for name, _, _ in each],
            )

    def _result(self, matcher: _Matcher, state: str) -> MatchResult:
        matches = sorted(
            matcher.found.values(), key=lambda m: (TIER_RANK[m.tier], -m.score, m.record.id)
        )
        return MatchResult(
            matches,
            self.rule.threshold,
            self.rule.phash_distance,
            self.rule.calibration is not None and self.options.threshold is None,
            state,
        )


def _outside_rule(
    collection: Collection, index: Index, options: MatchOptions, rule: CopyRule
) -> CopyRule:
    """The calibrated levels for outside images (:mod:`pixseek.jobs.false_alarms`: at
    most ``1 - target precision`` of unseen photos matched), for those not given."""
    if rule.calibration is None:
        return rule
    # with views, where kept (false_alarms_of asks the views file)
    alarms = false_alarms_of(collection, index, rule.calibration, options.views, options.candidates)
    return CopyRule(
        alarms.threshold if options.threshold is None else rule.threshold,
        alarms.radius if options.phash_distance is None else rule.phash_distance,
        rule.calibration,
    )


def match_image(
    collection: Collection,
    data: bytes,
    index: Index | None = None,
    options: MatchOptions = MatchOptions(),
    progress: Progress | None = None,
) -> MatchResult:
    """The collection images that ``data`` copies or nearly copies, strongest first;
    ``progress`` hears of the views a first unmatched query makes (images done, to make)."""
    session = _Session(collection, index or collection.index(), options, progress)
    return session.match([session.query(data)])[0]


def match_files(
    collection: Collection,
    paths: Iterable[Path],
    index: Index | None = None,
    options: MatchOptions = MatchOptions(),
    progress: Progress | None = None,
    batch: int = MATCH_BATCH,
) -> Iterator[tuple[Path, MatchResult | ImageDecodeError]]:
    """Each file's :class:`MatchResult`, in order, or the error that kept it from being
    matched (unreadable, not an image, too large): one bad file in a folder of suspects
    costs only its own answer. ``batch`` files are read and embedded at a time, so a
    folder of any size is matched in bounded memory, at the model's batch speed."""
    session = _Session(collection, index or collection.index(), options, progress)
    for chunk in _chunks(paths, batch):
        yield from zip(chunk, _match_chunk(session, [_read(path) for path in chunk]), strict=True)


def match_images(
    collection: Collection,
    images: Sequence[bytes],
    index: Index | None = None,
    options: MatchOptions = MatchOptions(),
    batch: int = MATCH_BATCH,
) -> list[MatchResult | ImageDecodeError]:
    """:func:`match_files` for images in memory (a request's): each one's result, or the
    error that kept it from being matched, in order."""
    session = _Session(collection, index or collection.index(), options, None)
    answers: list[MatchResult | ImageDecodeError] = []
    for chunk in _chunks(images, batch):
        answers += _match_chunk(session, chunk)
    return answers


def _read(path: Path) -> bytes | ImageDecodeError:
    try:
        return read_image_file(path)
    except ImageDecodeError as exc:
        return exc


def _chunks(items: Iterable[_Item], size: int) -> Iterator[list[_Item]]:
    chunk: list[_Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _match_chunk(
    session: _Session, items: Sequence[bytes | ImageDecodeError]
) -> list[MatchResult | ImageDecodeError]:
    """Each query's result or error (one it could not be read with, or decoded), in order;
    those that decode are matched together."""
    prepared = [_query_or_error(session, item) for item in items]
    queries = [query for query in prepared if isinstance(query, _Query)]
    results = iter(session.match(queries) if queries else [])
    return [q if isinstance(q, ImageDecodeError) else next(results) for q in prepared]


def _query_or_error(session: _Session, item: bytes | ImageDecodeError) -> _Query | ImageDecodeError:
    if isinstance(item, ImageDecodeError):
        return item
    try:
        return session.query(item)
    except ImageDecodeError as exc:
        return exc


def _views_state(collection: Collection, index: Index, options: MatchOptions) -> str:
    if not options.views:
        return OFF
    return KEPT if has_kept_views(collection, index) else MISSING


def _make_views(
    collection: Collection, index: Index, options: MatchOptions, progress: Progress | None
) -> str:
    """The views of every image, when the collection is small enough to make them now."""
    images = Filter.where({"kind": "image"})
    if collection.count(images) > options.make_views_up_to:
        return MISSING
    view_vectors(collection, index, list(collection.records(images)), progress)
    return MADE
