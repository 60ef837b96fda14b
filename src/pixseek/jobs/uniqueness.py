"""Uniqueness and a representative sample: which images are unlike the rest, and which few
cover the rest best.

- *Uniqueness* (after FiftyOne's): an image's mean cosine distance to its ``k``
  nearest neighbours, divided by the largest such mean in the set, so the most unusual
  image scores 1 and an image with ``k`` near-copies scores near 0. It finds the odd ones
  out (a wrong file, a rare scene, a corrupt picture) and, read the other way, images that
  add little. Neighbours come from :func:`pixseek.stores.knn.neighbours` (exact up to
  50,000 vectors, an IVF index beyond), so no all-pairs matrix is built.
- A *representative sample* of ``N`` by k-centre greedy (farthest-point) selection: start
  at the image nearest the set's mean direction, then repeatedly take the image farthest
  from everything taken so far. A pick's distance to the earlier ones is the coverage
  radius just before it (every image lay within it of some pick), so a labelling budget
  spent on the sample sees every region of the embedding space before a second image of
  any one region. The work is O(n·N) vector products, done in row chunks so memory stays
  bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pixseek.collection.collection import Collection
from pixseek.collection.index import Index
from pixseek.core.errors import InvalidInputError
from pixseek.core.filters import Filter
from pixseek.core.records import Record, record_dict
from pixseek.core.vectors import Vectors
from pixseek.stores.knn import load_all, neighbours

KINDS = ("image", "object")
CHUNK = 65_536  # rows per block of the sample's distance updates
ROUNDING = 1e-6  # float32 products of equal unit vectors miss 1 by about this much


@dataclass(frozen=True, slots=True)
class Scored:
    """One record with its uniqueness; in a sample, also its rank and coverage distance."""

    record: Record
    uniqueness: float  # 0..1, 1: the most unusual of the set
    distance: float  # mean cosine distance to its k nearest neighbours
    rank: int | None = None  # position in the sample (1 = the first pick)
    covering: float | None = None  # distance to the nearest earlier pick when it was taken
    covers: int | None = None  # records whose nearest sample member this is

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.record.id,
            "uniqueness": self.uniqueness,
            "distance": self.distance,
            "rank": self.rank,
            "covering": self.covering,
            "covers": self.covers,
            "record": record_dict(self.record),
        }


@dataclass(frozen=True, slots=True)
class UniquenessReport:
    kind: str
    checked: int
    neighbours: int
    unusual: list[Scored] = field(default_factory=list)  # most unusual first
    sample: list[Scored] = field(default_factory=list)  # in pick order
    coverage: float | None = None  # every checked record is this close to a sample member

    def to_dict(self) -> dict[str, Any]:
        """The one JSON shape of a uniqueness report (the CLI's --json and the API)."""
        return {
            "kind": self.kind,
            "checked": self.checked,
            "neighbours": self.neighbours,
            "unusual": [s.to_dict() for s in self.unusual],
            "sample": [s.to_dict() for s in self.sample],
            "coverage": self.coverage,
        }


def mean_neighbour_distance(vectors: Vectors, k: int) -> NDArray[np.float32]:
    """Each row's mean cosine distance to its ``k`` nearest other rows (zeros when there
    are no others). Rows are unit vectors."""
    count = min(k, len(vectors) - 1)
    if count < 1:
        return np.zeros(len(vectors), np.float32)
    rows, scores = neighbours(vectors, count + 1)
    own = rows == np.arange(len(vectors))[:, None]
    # each row itself may sit anywhere among equal vectors (or be missed by an IVF probe):
    # drop it where it is, and keep the k best others
    keep = np.argsort(own, axis=1, kind="stable")[:, :count]
    similar = np.take_along_axis(scores, keep, axis=1).astype(np.float64)
    distance = np.clip(1.0 - similar, 0.0, 2.0)
    distance[distance < ROUNDING] = 0.0  # copies are at distance 0, not at rounding noise
    mean: NDArray[np.float32] = distance.mean(axis=1).astype(np.float32)
    return mean


def uniqueness_scores(distances: NDArray[np.floating]) -> NDArray[np.float32]:
    """Distances scaled to 0..1 by the largest, so scores compare across collections and
    models whose distances differ in scale (a set of identical rows: all 0)."""
    top = float(distances.max()) if len(distances) else 0.0
    if top <= 0.0:
        return np.zeros(len(distances), np.float32)
    scaled: NDArray[np.float32] = (distances / top).astype(np.float32)
    return scaled


def central_row(vectors: Vectors) -> int:
    """The row nearest the set's mean direction: a deterministic first pick that is typical
    of the set, not an outlier."""
    mean = vectors.astype(np.float64).mean(axis=0)
    best, at = -np.inf, 0
    for start in range(0, len(vectors), CHUNK):
        similar = vectors[start : start + CHUNK].astype(np.float64) @ mean
        row = int(np.argmax(similar))
        if similar[row] > best:
            best, at = float(similar[row]), start + row
    return at


@dataclass(frozen=True, slots=True)
class Sample:
    """Rows picked by :func:`k_centre_greedy`, in pick order."""

    rows: list[int]
    covering: list[float | None]  # distance to the nearest earlier pick (None: the first)
    covers: list[int]  # rows whose nearest pick this is (itself included)
    radius: float  # the largest distance from any row to its nearest pick


def k_centre_greedy(vectors: Vectors, size: int) -> Sample:
    """``size`` rows (at most all of them) by farthest-point selection, starting at
    :func:`central_row`. Ties go to the lowest row, so the same vectors give the same
    sample."""
    if size < 1:
        raise InvalidInputError("a sample has at least 1 member")
    if len(vectors) == 0:
        raise InvalidInputError("nothing to sample from")
    size = min(size, len(vectors))
    nearest = np.full(len(vectors), np.inf, np.float32)
    owner = np.zeros(len(vectors), np.int64)  # position in ``rows`` of each row's nearest pick
    rows = [central_row(vectors)]
    covering: list[float | None] = [None]
    while True:
        centre, picked = vectors[rows[-1]], len(rows) - 1
        for start in range(0, len(vectors), CHUNK):
            distance = 1.0 - vectors[start : start + CHUNK] @ centre
            closer = distance < nearest[start : start + CHUNK]
            nearest[start : start + CHUNK][closer] = distance[closer]
            owner[start : start + CHUNK][closer] = picked
        nearest[rows[-1]], owner[rows[-1]] = 0.0, picked  # whatever a self-product rounds to
        if len(rows) == size:
            break
        row = int(np.argmax(nearest))
        rows.append(row)
        covering.append(_distance(nearest[row]))
    covers = np.bincount(owner, minlength=size)
    return Sample(rows, covering, [int(c) for c in covers], _distance(nearest.max()))


def _distance(value: float | np.floating[Any]) -> float:
    """A cosine distance without its rounding noise (never below 0)."""
    return 0.0 if value < ROUNDING else float(value)


def _population(index: Index, kind: str, where: Filter | None) -> tuple[list[Record], Vectors]:
    flt = Filter.where({"kind": kind}).and_(where)
    records, vectors = load_all(index.store, flt)
    if not records:
        what = f"{kind}s" + (" matching the filter" if where else "")
        raise InvalidInputError(f"no {what} in this index to score")
    return records, np.ascontiguousarray(vectors, dtype=np.float32)


def find_uniqueness(
    collection: Collection,
    index: Index | None = None,
    k: int = 5,
    top: int = 20,
    sample: int | None = None,
    where: Filter | None = None,
    kind: str = "image",
) -> UniquenessReport:
    """The ``top`` most unusual records of ``kind`` (matching ``where``) and, when
    ``sample`` is given, a representative sample of that many (at most all of them)."""
    if kind not in KINDS:
        raise InvalidInputError(f"uniqueness is of images or objects, not {kind!r}")
    if k < 1:
        raise InvalidInputError("k (the neighbours each score averages over) must be at least 1")
    if top < 0:
        raise InvalidInputError("top must be at least 0")
    if sample is not None and sample < 1:
        raise InvalidInputError(f"a sample has at least 1 member, not {sample}")
    records, vectors = _population(index or collection.index(), kind, where)
    distances = mean_neighbour_distance(vectors, k)
    scores = uniqueness_scores(distances)

    def scored(row: int) -> Scored:
        return Scored(records[row], round(float(scores[row]), 4), round(float(distances[row]), 4))

    used = min(k, len(records) - 1)
    unusual = [scored(int(row)) for row in np.argsort(-scores, kind="stable")[:top]]
    if sample is None:
        return UniquenessReport(kind, len(records), used, unusual)
    picked = k_centre_greedy(vectors, sample)
    members = [
        replace(
            scored(row),
            rank=rank,
            covering=None if cover is None else round(cover, 4),
            covers=covers,
        )
        for rank, (row, cover, covers) in enumerate(
            zip(picked.rows, picked.covering, picked.covers, strict=True), 1
        )
    ]
    return UniquenessReport(kind, len(records), used, unusual, members, round(picked.radius, 4))
