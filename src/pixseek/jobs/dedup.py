"""Near-duplicate groups in a collection, tier by tier.

- **exact**: the same bytes (content hash);
- **phash**: perceptually the same picture (a 64-bit DCT hash from ``imagehash``, within a
  Hamming distance), checked on the embedding neighbours only, never on all pairs;
- **embedding**: cosine similarity at or above a threshold among each image's nearest
  neighbours (:func:`pixseek.stores.knn.neighbours`: exact up to 50k images, an IVF
  index beyond).

Links of every tier form groups around keepers (the largest image, then the oldest file,
then the smallest id): every member of a group is linked to its keeper itself, so a chain
of similar images does not join unlike ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pixseek.collection.collection import Collection
from pixseek.collection.index import Index
from pixseek.core.errors import InvalidInputError
from pixseek.core.filters import Filter
from pixseek.core.paths import local_path
from pixseek.core.records import Record
from pixseek.core.vectors import Vectors
from pixseek.stores.knn import neighbours

TIERS = ("exact", "phash", "embedding")
TIER_RANK = {tier: rank for rank, tier in enumerate(TIERS)}


@dataclass(frozen=True, slots=True)
class DedupOptions:
    threshold: float = 0.95  # cosine for the embedding tier
    phash_distance: int = 8  # of 64 bits
    neighbours: int = 10
    tiers: tuple[str, ...] = TIERS

    def __post_init__(self) -> None:
        unknown = set(self.tiers) - set(TIERS)
        if unknown or not self.tiers:
            raise InvalidInputError(f"tiers are {', '.join(TIERS)}; got {sorted(unknown)}")
        if not -1.0 <= self.threshold <= 1.0:
            raise InvalidInputError(f"threshold is a cosine in [-1, 1], got {self.threshold}")


@dataclass(frozen=True, slots=True)
class Member:
    record: Record
    keeper: bool
    tier: str  # how it joined the group: its strongest link
    score: float


@dataclass(frozen=True, slots=True)
class Group:
    members: list[Member]

    @property
    def keeper(self) -> Member:
        return next(m for m in self.members if m.keeper)


@dataclass(slots=True)
class Links:
    """Pairs of row numbers, with the tier and score of each link."""

    a: list[NDArray[np.int64]] = field(default_factory=list)
    b: list[NDArray[np.int64]] = field(default_factory=list)
    tier: list[NDArray[np.int64]] = field(default_factory=list)
    score: list[NDArray[np.float32]] = field(default_factory=list)

    def add(self, a: Iterable[int], b: Iterable[int], tier: str, score: Iterable[float]) -> None:
        a_array = np.fromiter(a, np.int64)
        self.a.append(a_array)
        self.b.append(np.fromiter(b, np.int64))
        self.tier.append(np.full(len(a_array), TIER_RANK[tier], np.int64))
        self.score.append(np.fromiter(score, np.float32))

    def arrays(self) -> tuple[NDArray[np.int64], ...]:
        if not self.a:
            empty = np.zeros(0, np.int64)
            return empty, empty, empty
        return np.concatenate(self.a), np.concatenate(self.b), np.concatenate(self.tier)

    def scores(self) -> NDArray[np.float32]:
        return np.concatenate(self.score) if self.score else np.zeros(0, np.float32)


Pairs = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]


def embedding_links(vectors: Vectors, threshold: float, k: int) -> Pairs:
    """(row, neighbour row, cosine) of every neighbour pair at or above ``threshold``."""
    indices, scores = neighbours(vectors, k + 1)
    rows = np.repeat(np.arange(len(vectors)), indices.shape[1])
    flat, flat_scores = indices.reshape(-1), scores.reshape(-1)
    keep = (flat != rows) & (flat >= 0) & (flat_scores >= threshold)
    return rows[keep], flat[keep], flat_scores[keep]


def components(count: int, a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.int64]:
    """Connected component label of each row."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(count, count))
    return np.asarray(connected_components(graph, directed=False)[1], np.int64)


def image_phash(image: Image.Image) -> int:
    """The 64-bit perceptual (DCT) hash of a picture, as an integer."""
    import imagehash

    return int(str(imagehash.phash(image)), 16)


def perceptual_hash(path: str) -> int | None:
    """The perceptual hash of an image file; None when it cannot be decoded."""
    from pixseek.core.errors import ImageDecodeError
    from pixseek.imaging.decode import DecodeOptions, load_image_file

    try:
        image = load_image_file(local_path(path), DecodeOptions(draft_size=256))
    except (ImageDecodeError, OSError):
        return None
    return image_phash(image)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def phash_score(a: int, b: int) -> float:
    """Similarity of two perceptual hashes: the share of their 64 bits that agree."""
    return 1.0 - hamming(a, b) / 64


@dataclass(frozen=True, slots=True)
class Link:
    a: Record
    b: Record
    tier: str
    score: float


def find_duplicates(
    collection: Collection, index: Index | None = None, options: DedupOptions = DedupOptions()
) -> list[Group]:
    """Groups of two or more near-duplicate images, largest groups first."""
    records, links = _links(index or collection.index(), options)
    return _groups(records, links)


def find_links(
    collection: Collection, index: Index | None = None, options: DedupOptions = DedupOptions()
) -> list[Link]:
    """Every pair of images each tier links, before they are joined into groups."""
    records, links = _links(index or collection.index(), options)
    a, b, tiers = links.arrays()
    return [
        Link(records[i], records[j], TIERS[t], float(score))
        for i, j, t, score in zip(
            a.tolist(), b.tolist(), tiers.tolist(), links.scores().tolist(), strict=True
        )
    ]


def _links(index: Index, options: DedupOptions) -> tuple[list[Record], Links]:
    records: list[Record] = []
    parts: list[Vectors] = []
    for batch, vectors in index.store.scan(Filter.where({"kind": "image"}), with_vectors=True):
        assert vectors is not None
        records += batch
        parts.append(vectors)
    links = Links()
    if len(records) < 2:
        return records, links
    vectors = np.concatenate(parts)
    if "exact" in options.tiers:
        _exact_links(records, links)
    looser = min(options.threshold, 0.8) if "phash" in options.tiers else options.threshold
    near_a, near_b, near_scores = embedding_links(vectors, looser, options.neighbours)
    if "phash" in options.tiers:
        _phash_links(records, near_a, near_b, options.phash_distance, links)
    if "embedding" in options.tiers:
        strong = near_scores >= options.threshold
        links.add(near_a[strong], near_b[strong], "embedding", near_scores[strong])
    return records, links


def _exact_links(records: Sequence[Record], links: Links) -> None:
    first: dict[str, int] = {}
    pairs = []
    for row, record in enumerate(records):
        if record.content_hash:
            pairs.append((first.setdefault(record.content_hash, row), row))
    pairs = [(a, b) for a, b in pairs if a != b]
    links.add((a for a, _ in pairs), (b for _, b in pairs), "exact", (1.0 for _ in pairs))


def _phash_links(
    records: Sequence[Record],
    a: NDArray[np.int64],
    b: NDArray[np.int64],
    distance: int,
    links: Links,
) -> None:
    hashes: dict[int, int | None] = {}
    found_a, found_b, scores = [], [], []
    for row, other in zip(a.tolist(), b.tolist(), strict=True):
        for r in (row, other):
            if r not in hashes:
                hashes[r] = perceptual_hash(records[r].path)
        left, right = hashes[row], hashes[other]
        if left is not None and right is not None and hamming(left, right) <= distance:
            found_a.append(row)
            found_b.append(other)
            scores.append(phash_score(left, right))
    links.add(found_a, found_b, "phash", scores)


def _age(record: Record) -> float:
    try:
        return os.stat(local_path(record.path)).st_mtime
    except OSError:
        return float("inf")


def _groups(records: Sequence[Record], links: Links) -> list[Group]:
    """Groups around keepers, without chaining: every member is linked to its keeper itself
    (the keeper shows its strongest link in the group).

    Images are taken best first (largest, then oldest file, then smallest id); an image not
    yet in a group becomes the keeper of the images it links to that are not in one either.
    A~B and B~C with A and C unlike put C in no group of A's.
    """
    a, b, tiers = links.arrays()
    if not len(a):
        return []
    strongest: dict[tuple[int, int], tuple[int, float]] = {}  # pair -> (tier rank, score)
    neighbours: dict[int, set[int]] = {}
    for row, other, tier, score in zip(
        a.tolist(), b.tolist(), tiers.tolist(), links.scores().tolist(), strict=True
    ):
        pair = (min(row, other), max(row, other))
        current = strongest.get(pair)
        if current is None or (tier, -score) < (current[0], -current[1]):
            strongest[pair] = (tier, score)
        neighbours.setdefault(row, set()).add(other)
        neighbours.setdefault(other, set()).add(row)
    order = sorted(
        neighbours,
        key=lambda r: (-records[r].width * records[r].height, _age(records[r]), records[r].id),
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
        tier, score = min(found.values(), key=lambda link: (link[0], -link[1]))
        members = [Member(records[keeper], True, TIERS[tier], round(score, 6))]
        members += [
            Member(records[row], False, TIERS[t], round(value, 6))
            for row, (t, value) in found.items()
        ]
        groups.append(Group(members))
    return sorted(groups, key=lambda g: (-len(g.members), g.keeper.record.id))
