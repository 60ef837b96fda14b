"""Near-duplicate groups in a collection, tier by tier.

- **exact**: the same bytes (content hash);
- **phash**: perceptually the same picture: 64-bit DCT hashes, computed when the images
  were indexed, within a Hamming radius, searched over every image by multi-index hashing
  (faiss), never only among embedding neighbours;
- **embedding**: cosine at or above a threshold among each image's nearest neighbours
  (:func:`pixseek.stores.knn.neighbours`: exact up to 50k images, an IVF index beyond),
  and between each image's *views* (turned ±10°, its centre, its 60% corners; embedded once
  and kept, see :mod:`pixseek.jobs.copy_views`) and the other images: rotated copies and
  crops, which an embedding alone sees as other pictures.

The threshold and the radius come from the index's copy calibration
(:mod:`pixseek.jobs.calibrate`, made when it is first needed) unless given; each link
carries the calibrated probability that it joins a copy. Links of every tier form groups
around keepers (the image linked to the most others, then the largest, then the oldest
file, then the smallest id): every member of a group is linked to its keeper itself, so a
chain of similar images does not join unlike ones. ``across`` keeps only links between
images whose value of a field (a split) differs: the leaks between training and test data.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pixseek.collection.collection import Collection
from pixseek.collection.index import Index
from pixseek.core.calibration import CopyCalibration
from pixseek.core.errors import CalibrationError, InvalidInputError
from pixseek.core.filters import Filter
from pixseek.core.paths import local_path
from pixseek.core.records import Record, record_dict
from pixseek.core.vectors import Vectors
from pixseek.imaging.hashes import PHASH_BITS, SAME_PICTURE_BITS, binary_codes
from pixseek.imaging.views import COPY_VIEWS
from pixseek.jobs.calibrate import calibrate, stored_hashes
from pixseek.jobs.copy_views import Progress, ViewVectors, view_vectors
from pixseek.stores.knn import load_all, neighbours, neighbours_of

TIERS = ("exact", "phash", "embedding")
TIER_RANK = {tier: rank for rank, tier in enumerate(TIERS)}
ACROSS_FIELDS = ("split", "label", "source")
BRUTE_FORCE_HASHES_UP_TO = 200_000  # images; beyond, multi-index hashing
MAX_RADIUS = PHASH_BITS // 2  # bits: beyond, two hashes have less in common than chance
VIEWS_MADE_UP_TO = 100_000  # images: seven embeddings each, once, unless asked beyond


@dataclass(frozen=True, slots=True)
class DedupOptions:
    """``threshold`` (cosine) and ``phash_distance`` (bits): None takes the index's
    calibrated values."""

    threshold: float | None = None
    phash_distance: int | None = None
    neighbours: int = 10
    tiers: tuple[str, ...] = TIERS
    across: str = ""
    # the embedding tier also compares turned and corner views: None makes those missing
    # for up to ``make_views_up_to`` images (and uses those kept beyond); True at any size
    views: bool | None = None
    make_views_up_to: int = VIEWS_MADE_UP_TO  # 0: a server request, which makes none

    def __post_init__(self) -> None:
        unknown = set(self.tiers) - set(TIERS)
        if unknown or not self.tiers:
            raise InvalidInputError(f"tiers are {', '.join(TIERS)}; got {sorted(unknown)}")
        if self.make_views_up_to < 0:
            raise InvalidInputError("make_views_up_to is a number of images, at least 0")
        if self.threshold is not None and not -1.0 <= self.threshold <= 1.0:
            raise InvalidInputError(f"threshold is a cosine in [-1, 1], got {self.threshold}")
        if self.phash_distance is not None and not 0 <= self.phash_distance <= MAX_RADIUS:
            raise InvalidInputError(
                f"phash_distance is a number of bits in [0, {MAX_RADIUS}], got "
                f"{self.phash_distance} (tiers without phash leave the hash tier out)"
            )
        if self.across and self.across not in ACROSS_FIELDS:
            raise InvalidInputError(f"--across takes {', '.join(ACROSS_FIELDS)}")
        self._refuse_what_the_tiers_ignore()

    def _refuse_what_the_tiers_ignore(self) -> None:
        """A setting for a tier that is not used would be accepted and ignored."""
        unused = [
            name
            for name, given, tier in (
                ("threshold", self.threshold is not None, "embedding"),
                ("views", self.views is True, "embedding"),
                ("phash distance", self.phash_distance is not None, "phash"),
            )
            if given and tier not in self.tiers
        ]
        if unused:
            raise InvalidInputError(
                f"{' and '.join(unused)} given, but the tiers used are {', '.join(self.tiers)}"
            )


@dataclass(frozen=True, slots=True)
class Member:
    record: Record
    keeper: bool
    tier: str  # how it is linked to the keeper (the keeper: its strongest link)
    score: float
    probability: float | None = None  # calibrated P(copy) of that link
    view: str = ""  # the view that linked it ("top left of the keeper"), "" for none

    def to_dict(self) -> dict[str, Any]:
        return {
            "record": record_dict(self.record),
            "keeper": self.keeper,
            "tier": self.tier,
            "score": self.score,
            "probability": self.probability,
            "view": self.view or None,
        }


@dataclass(frozen=True, slots=True)
class Group:
    members: list[Member]

    @property
    def keeper(self) -> Member:
        return next(m for m in self.members if m.keeper)

    def to_dict(self) -> dict[str, Any]:
        return {"keeper": self.keeper.record.id, "members": [m.to_dict() for m in self.members]}


@dataclass(frozen=True, slots=True)
class Duplicates:
    """The groups, and the settings that made them (measured, or given)."""

    groups: list[Group]
    threshold: float
    phash_distance: int
    calibrated: bool  # the threshold: the index's calibrated one (not given, and measured)
    across: str = ""
    views: int = 0  # images whose views were compared (0: views not used)
    # images with no views kept, none made by this run (beyond its size limit, or over
    # HTTP: a views job makes them); includes images whose files cannot be read
    views_missing: int = 0
    phash_calibrated: bool = False  # the radius: the index's calibrated one

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "phash_distance": self.phash_distance,
            "calibrated": self.calibrated,
            "phash_calibrated": self.phash_calibrated,
            "across": self.across or None,
            "views": self.views,
            "views_missing": self.views_missing,
            "groups": [group.to_dict() for group in self.groups],
        }


NO_VIEW = -1


@dataclass(slots=True)
class Links:
    """Pairs of row numbers, with the tier and score of each link, and the view of row
    ``a`` that made it (a number in ``COPY_VIEWS``, or :data:`NO_VIEW`)."""

    a: list[NDArray[np.int64]] = field(default_factory=list)
    b: list[NDArray[np.int64]] = field(default_factory=list)
    tier: list[NDArray[np.int64]] = field(default_factory=list)
    score: list[NDArray[np.float32]] = field(default_factory=list)
    view: list[NDArray[np.int64]] = field(default_factory=list)

    def add(
        self,
        a: Iterable[int],
        b: Iterable[int],
        tier: str,
        score: Iterable[float],
        view: NDArray[np.int64] | None = None,
    ) -> None:
        a_array = np.fromiter(a, np.int64)
        self.a.append(a_array)
        self.b.append(np.fromiter(b, np.int64))
        self.tier.append(np.full(len(a_array), TIER_RANK[tier], np.int64))
        self.score.append(np.fromiter(score, np.float32))
        self.view.append(np.full(len(a_array), NO_VIEW, np.int64) if view is None else view)

    def arrays(self) -> tuple[NDArray[np.int64], ...]:
        if not self.a:
            empty = np.zeros(0, np.int64)
            return empty, empty, empty
        return np.concatenate(self.a), np.concatenate(self.b), np.concatenate(self.tier)

    def scores(self) -> NDArray[np.float32]:
        return np.concatenate(self.score) if self.score else np.zeros(0, np.float32)

    def views(self) -> NDArray[np.int64]:
        return np.concatenate(self.view) if self.view else np.zeros(0, np.int64)

    def keep(self, mask: NDArray[np.bool_]) -> Links:
        a, b, tiers = self.arrays()
        scores, views = self.scores()[mask], self.views()[mask]
        return Links([a[mask]], [b[mask]], [tiers[mask]], [scores], [views])


Pairs = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]


def embedding_links(vectors: Vectors, threshold: float, k: int) -> Pairs:
    """(row, neighbour row, cosine) of every neighbour pair at or above ``threshold``."""
    indices, scores = neighbours(vectors, k + 1)
    rows = np.repeat(np.arange(len(vectors)), indices.shape[1])
    keep, flat, flat_scores = _linked(rows, indices, scores, threshold)
    return rows[keep], flat[keep], flat_scores[keep]


def view_links(
    seen: ViewVectors, vectors: Vectors, threshold: float, k: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32], NDArray[np.int64]]:
    """(row whose view it is, other row, cosine, view) of every view's neighbour among the
    images at or above ``threshold``."""
    if not len(seen.vectors):
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.float32), empty
    indices, scores = neighbours_of(seen.vectors, vectors, k)
    width = indices.shape[1]
    owners, names = np.repeat(seen.rows, width), np.repeat(seen.names, width)
    keep, flat, flat_scores = _linked(owners, indices, scores, threshold)
    return owners[keep], flat[keep], flat_scores[keep], names[keep]


def _linked(
    owners: NDArray[np.int64],
    indices: NDArray[np.int64],
    scores: NDArray[np.float32],
    threshold: float,
) -> tuple[NDArray[np.bool_], NDArray[np.int64], NDArray[np.float32]]:
    """Which neighbours (flattened, each beside the row it was found for in ``owners``)
    link: another row, found, at or above ``threshold``."""
    flat, flat_scores = indices.reshape(-1), scores.reshape(-1)
    return (flat != owners) & (flat >= 0) & (flat_scores >= threshold), flat, flat_scores


def components(count: int, a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.int64]:
    """Connected component label of each row."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(count, count))
    return np.asarray(connected_components(graph, directed=False)[1], np.int64)


def hash_links(codes: NDArray[np.uint64], radius: int) -> tuple[NDArray[np.int64], ...]:
    """Every pair of 64-bit hashes within ``radius`` bits: (row, other row, distance).

    Exact either way: brute force (faiss, popcounts) for up to
    :data:`BRUTE_FORCE_HASHES_UP_TO` hashes; beyond, multi-index hashing over four
    16-bit parts, where a pair within ``radius`` differs by at most ``radius // 4`` bits
    in one part, so probing that many flips of each part finds it.
    """
    import faiss

    empty = np.zeros(0, np.int64)
    if radius < 0 or len(codes) < 2:
        return empty, empty, empty
    data = binary_codes(codes)
    if len(codes) <= BRUTE_FORCE_HASHES_UP_TO:
        index: Any = faiss.IndexBinaryFlat(PHASH_BITS)
    else:
        index = faiss.IndexBinaryMultiHash(PHASH_BITS, 4, 16)
        index.nflip = radius // 4
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    index.add(data)
    limits, distances, found = index.range_search(data, radius + 1)  # below radius + 1
    bounds: NDArray[np.int64] = np.asarray(limits).astype(np.int64)
    counts: NDArray[np.int64] = bounds[1:] - bounds[:-1]
    rows = np.repeat(np.arange(len(codes), dtype=np.int64), counts)
    keep = rows < found  # each pair once, not itself
    return rows[keep], found[keep].astype(np.int64), distances[keep].astype(np.int64)


@dataclass(frozen=True, slots=True)
class Link:
    a: Record
    b: Record
    tier: str
    score: float


def find_duplicates(
    collection: Collection,
    index: Index | None = None,
    options: DedupOptions = DedupOptions(),
    progress: Progress | None = None,
) -> Duplicates:
    """Groups of two or more near-duplicate images, largest groups first. ``progress``
    hears of the views embedded (images done, images to embed) on a first run."""
    index = index or collection.index()
    settings = resolve(collection, index, options)
    found = _links(collection, index, settings, progress)
    links = found.links
    if settings.across:
        links = _across(found.records, links, settings.across)
    groups = _groups(found.records, links, settings.rule)
    return Duplicates(
        groups,
        settings.threshold,
        settings.phash_distance,
        settings.rule.calibration is not None and options.threshold is None,
        settings.across,
        found.viewed,
        found.views_missing,
        settings.rule.calibration is not None and options.phash_distance is None,
    )


def find_links(
    collection: Collection, index: Index | None = None, options: DedupOptions = DedupOptions()
) -> list[Link]:
    """Every pair of images each tier links, before they are joined into groups."""
    index = index or collection.index()
    found = _links(collection, index, resolve(collection, index, options))
    records, links = found.records, found.links
    a, b, tiers = links.arrays()
    return [
        Link(records[i], records[j], TIERS[t], float(score))
        for i, j, t, score in zip(
            a.tolist(), b.tolist(), tiers.tolist(), links.scores().tolist(), strict=True
        )
    ]


@dataclass(frozen=True, slots=True)
class Settings:
    rule: CopyRule
    neighbours: int
    tiers: tuple[str, ...]
    across: str
    views: bool | None
    make_views_up_to: int

    @property
    def threshold(self) -> float:
        return self.rule.threshold

    @property
    def phash_distance(self) -> int:
        return self.rule.phash_distance


@dataclass(frozen=True, slots=True)
class CopyRule:
    """What duplicates and match call a copy: the given threshold and radius, else the
    index's calibrated ones; and how likely each link is to join a copy."""

    threshold: float
    phash_distance: int
    calibration: CopyCalibration | None

    def probability(self, tier: str, score: float) -> float | None:
        if tier == "exact":
            return 1.0
        if self.calibration is None:
            return None
        if tier == "phash":
            return self.calibration.hashes.precision
        return self.calibration.probability(score)


# Until an index has enough images to be measured (jobs.calibrate.MIN_IMAGES), the
# embedding tier links nothing and the hash tier only near-identical pictures.
UNCALIBRATED_THRESHOLD = 1.0
UNCALIBRATED_RADIUS = SAME_PICTURE_BITS


def calibration_of(collection: Collection, index: Index) -> CopyCalibration | None:
    """The index's copy calibration, made now (and kept) when it has none or one made
    before the views it compares were measured; None while it has too few readable images
    to measure."""
    kept = index.entry.calibration
    if kept is not None and tuple(kept.views) == COPY_VIEWS:
        return kept
    try:
        return calibrate(collection, index)
    except CalibrationError:
        return kept


def copy_rule(
    collection: Collection,
    index: Index,
    threshold: float | None,
    phash_distance: int | None,
    measure: bool,
) -> CopyRule:
    """The given threshold and radius, the calibrated ones for those not given. ``measure``:
    calibrate the index now if it has no calibration (when a value is needed from it);
    else a calibration already there still gives the probabilities."""
    calibration = calibration_of(collection, index) if measure else index.entry.calibration
    if threshold is None:
        threshold = calibration.threshold if calibration else UNCALIBRATED_THRESHOLD
    if phash_distance is None:
        phash_distance = calibration.hashes.radius if calibration else UNCALIBRATED_RADIUS
    return CopyRule(threshold, phash_distance, calibration)


def resolve(collection: Collection, index: Index, options: DedupOptions) -> Settings:
    """Given settings, or the calibrated ones of the index (measured only for a tier in use
    that needs one)."""
    measure = (options.threshold is None and "embedding" in options.tiers) or (
        options.phash_distance is None and "phash" in options.tiers
    )
    rule = copy_rule(collection, index, options.threshold, options.phash_distance, measure)
    return Settings(
        rule,
        options.neighbours,
        options.tiers,
        options.across,
        options.views,
        options.make_views_up_to,
    )


@dataclass(frozen=True, slots=True)
class Found:
    records: list[Record]
    links: Links
    viewed: int  # images whose views were compared
    views_missing: int = 0  # images without views, none made (see Duplicates)


def _links(
    collection: Collection, index: Index, settings: Settings, progress: Progress | None = None
) -> Found:
    records, vectors = load_all(index.store, Filter.where({"kind": "image"}))
    links = Links()
    if len(records) < 2:
        return Found(records, links, 0)
    if "exact" in settings.tiers:
        _exact_links(records, links)
    if "phash" in settings.tiers:
        _phash_links(records, settings.phash_distance, links)
    viewed = missing = 0
    if "embedding" in settings.tiers:
        a, b, scores = embedding_links(vectors, settings.threshold, settings.neighbours)
        links.add(a, b, "embedding", scores)
        if settings.views is not False:
            embed = settings.views is True or len(records) <= settings.make_views_up_to
            seen = view_vectors(collection, index, records, progress, embed)
            a, b, scores, which = view_links(seen, vectors, settings.threshold, settings.neighbours)
            links.add(a, b, "embedding", scores, which)
            viewed = seen.images
            missing = 0 if embed else len(records) - seen.images
    return Found(records, links, viewed, missing)


def _exact_links(records: Sequence[Record], links: Links) -> None:
    first: dict[str, int] = {}
    pairs = []
    for row, record in enumerate(records):
        if record.content_hash:
            pairs.append((first.setdefault(record.content_hash, row), row))
    pairs = [(a, b) for a, b in pairs if a != b]
    links.add((a for a, _ in pairs), (b for _, b in pairs), "exact", (1.0 for _ in pairs))


def _phash_links(records: Sequence[Record], radius: int, links: Links) -> None:
    """Hash links over every image, from the hashes stored at ingest (images indexed before
    hashes were stored are hashed from their files once here)."""
    rows: list[int] = []
    codes: list[int] = []
    for row, record in enumerate(records):
        found = stored_hashes(record)
        if found is not None:
            rows.append(row)
            codes.append(found.phash)
    if len(codes) < 2:
        return
    positions = np.asarray(rows, np.int64)
    a, b, distances = hash_links(np.asarray(codes, np.uint64), radius)
    scores = 1.0 - distances / PHASH_BITS
    links.add(positions[a], positions[b], "phash", scores)


def _across(records: Sequence[Record], links: Links, name: str) -> Links:
    """Only the links between images whose ``name`` differs (both known)."""
    values = [_value(record, name) for record in records]
    a, b, _ = links.arrays()
    mask = np.array(
        [
            values[i] is not None and values[j] is not None and values[i] != values[j]
            for i, j in zip(a.tolist(), b.tolist(), strict=True)
        ],
        dtype=bool,
    )
    return links.keep(mask) if len(a) else links


def _value(record: Record, name: str) -> str | None:
    value = record.split if name == "split" else getattr(record, name)
    return None if value is None else str(value)


def _age(record: Record) -> float:
    try:
        return os.stat(local_path(record.path)).st_mtime
    except OSError:
        return float("inf")


def _groups(records: Sequence[Record], links: Links, rule: CopyRule) -> list[Group]:
    """Groups around keepers, without chaining: every member is linked to its keeper itself
    (the keeper shows its strongest link in the group).

    Images are taken best first (linked to the most others, then largest, then oldest file,
    then smallest id); an image not yet in a group becomes the keeper of the images it links
    to that are not in one either. A~B, B~C and C~D, nothing else: B keeps A and C, and D
    (like C, unlike B) joins no group.
    """
    a, b, tiers = links.arrays()
    if not len(a):
        return []
    # pair -> (tier rank, score, view, row whose view it is)
    strongest: dict[tuple[int, int], tuple[int, float, int, int]] = {}
    neighbours: dict[int, set[int]] = {}
    for row, other, tier, score, view in zip(
        a.tolist(),
        b.tolist(),
        tiers.tolist(),
        links.scores().tolist(),
        links.views().tolist(),
        strict=True,
    ):
        pair = (min(row, other), max(row, other))
        current = strongest.get(pair)
        if current is None or (tier, -score) < (current[0], -current[1]):
            strongest[pair] = (tier, score, view, row)
        neighbours.setdefault(row, set()).add(other)
        neighbours.setdefault(other, set()).add(row)
    # the image linked to most others is most likely the original (a copy with a border
    # is larger than it); of those, the largest
    order = sorted(
        neighbours,
        key=lambda r: (
            -len(neighbours[r]),
            -records[r].width * records[r].height,
            _age(records[r]),
            records[r].id,
        ),
    )
    placed: set[int] = set()
    groups = []
    for keeper in order:
        if keeper in placed:
            continue
        joined = sorted(
            (r for r in neighbours[keeper] if r not in placed), key=lambda r: records[r].id
        )
        if not joined:
            continue
        placed.update([keeper, *joined])
        found = {row: strongest[(min(keeper, row), max(keeper, row))] for row in joined}
        best = min(found.values(), key=lambda link: (link[0], -link[1]))
        members = [_member(records[keeper], True, best, keeper, rule)]
        members += [_member(records[row], False, link, keeper, rule) for row, link in found.items()]
        groups.append(Group(members))
    return sorted(groups, key=lambda g: (-len(g.members), g.keeper.record.id))


def _member(
    record: Record, keeper: bool, link: tuple[int, float, int, int], keeper_row: int, rule: CopyRule
) -> Member:
    tier, score, view, owner = link
    seen = ""
    if view != NO_VIEW:
        whose = "the keeper" if owner == keeper_row else "a member" if keeper else "this image"
        seen = f"{COPY_VIEWS[view]} of {whose}"
    name = TIERS[tier]
    return Member(record, keeper, name, round(score, 6), rule.probability(name, score), seen)
