"""Label errors: annotated objects (or labelled images) whose label disagrees with their
nearest neighbours in embedding space.

Each labelled record's ``k`` nearest labelled neighbours of the same kind vote for their
labels, weighted by similarity, with the labels' overall shares as a weak prior. The
*mistakenness* is the best other label's share of the vote minus the given label's share
(from -1 to 1): above 0, the neighbours suggest another label, and that label comes with
it. Records are ranked by it, most suspect first. A user's verdicts (confirmed: the label
is wrong; dismissed: it is right) are kept in the collection and travel with the list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pixseek.collection.atomic import write_atomic
from pixseek.collection.collection import Collection
from pixseek.collection.index import Index
from pixseek.core.errors import InvalidInputError, UnknownIdError
from pixseek.core.filters import Filter
from pixseek.core.records import Record, record_dict
from pixseek.core.vectors import Vectors
from pixseek.stores.knn import neighbours

VERDICTS = ("confirmed", "dismissed")
PRIOR_WEIGHT = 1.0


@dataclass(frozen=True, slots=True)
class LabelError:
    record: Record
    mistakenness: float
    given_share: float  # the given label's share of the neighbours' vote
    suggested: str
    suggested_share: float
    verdict: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.record.id,
            "label": self.record.label,
            "suggested": self.suggested,
            "mistakenness": self.mistakenness,
            "given_share": self.given_share,
            "suggested_share": self.suggested_share,
            "verdict": self.verdict,
            "record": record_dict(self.record),
        }


@dataclass(frozen=True, slots=True)
class LabelErrorReport:
    kind: str
    checked: int
    neighbours: int
    errors: list[LabelError] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The one JSON shape of a label-error list (the CLI's --json and the API)."""
        return {
            "kind": self.kind,
            "checked": self.checked,
            "neighbours": self.neighbours,
            "errors": [e.to_dict() for e in self.errors],
        }


def _population(index: Index, kind: str) -> tuple[list[Record], Vectors]:
    flt = Filter.where({"kind": "object", "source": "gt"} if kind == "object" else {"kind": kind})
    records: list[Record] = []
    parts: list[Vectors] = []
    for batch, vectors in index.store.scan(flt, with_vectors=True):
        assert vectors is not None
        chosen = [i for i, r in enumerate(batch) if r.label]
        records += [batch[i] for i in chosen]
        parts.append(vectors[chosen])
    if not records:
        raise InvalidInputError(
            f"no labelled {kind}s to check: index annotations (--coco) or folder labels "
            "(--label-from-folder)"
        )
    return records, np.concatenate(parts)


def find_label_errors(
    collection: Collection,
    index: Index | None = None,
    kind: str = "auto",
    k: int = 10,
    top: int | None = 100,
    include_reviewed: bool = True,
) -> LabelErrorReport:
    """Labelled records of ``kind`` whose neighbours suggest another label, most suspect
    first (at most ``top``; None: all of them). ``auto``: annotated objects where any
    carries a label, else images (a folder-labelled collection has labels on its images)."""
    if kind not in ("object", "image", "auto"):
        raise InvalidInputError(f"label errors are of objects or images, not {kind!r}")
    if k < 1:
        raise InvalidInputError("k must be at least 1")
    index = index or collection.index()
    if kind == "auto":
        try:
            records, vectors = _population(index, "object")
            kind = "object"
        except InvalidInputError:
            records, vectors = _population(index, "image")
            kind = "image"
    else:
        records, vectors = _population(index, kind)
    labels = sorted({str(r.label) for r in records})
    if len(labels) < 2:
        return LabelErrorReport(kind, len(records), 0)
    given = np.array([labels.index(str(r.label)) for r in records])
    count = min(k, len(records) - 1)
    if count < 1:
        return LabelErrorReport(kind, len(records), 0)
    rows, scores = neighbours(vectors, count + 1)
    own = rows == np.arange(len(records))[:, None]
    # drop each record itself (it may sit anywhere among equal vectors), keep k others
    keep = np.argsort(own, axis=1, kind="stable")[:, :count]
    rows = np.take_along_axis(rows, keep, axis=1)
    weights = np.clip(np.take_along_axis(scores, keep, axis=1), 0.0, None).astype(np.float64)
    votes = np.zeros((len(records), len(labels)))
    np.add.at(
        votes, (np.repeat(np.arange(len(records)), count), given[rows].ravel()), weights.ravel()
    )
    prior = np.bincount(given, minlength=len(labels)) / len(records)
    shares = (votes + PRIOR_WEIGHT * prior) / (weights.sum(axis=1, keepdims=True) + PRIOR_WEIGHT)
    mine = shares[np.arange(len(records)), given]
    others = shares.copy()
    others[np.arange(len(records)), given] = -1.0
    suggested = others.argmax(axis=1)
    best = others[np.arange(len(records)), suggested]
    score = best - mine
    reviews = read_reviews(collection)
    order = [int(i) for i in np.argsort(-score, kind="stable") if score[i] > 0]
    if not include_reviewed:
        order = [i for i in order if records[i].id not in reviews]
    errors = [
        LabelError(
            records[i],
            round(float(score[i]), 4),
            round(float(mine[i]), 4),
            labels[suggested[i]],
            round(float(best[i]), 4),
            reviews.get(records[i].id),
        )
        for i in order[:top]
    ]
    return LabelErrorReport(kind, len(records), count, errors)


def read_reviews(collection: Collection) -> dict[str, str]:
    """Verdicts by record id."""
    path = collection.layout.label_reviews
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return {str(k): str(v) for k, v in data.items() if v in VERDICTS}


def review(collection: Collection, record_id: str, verdict: str | None) -> dict[str, str]:
    """Record a verdict on a suspected label error (None: forget it); returns every verdict."""
    if verdict is not None and verdict not in VERDICTS:
        raise InvalidInputError(f"a verdict is confirmed or dismissed, not {verdict!r}")
    if not collection.get_many([record_id]):
        raise UnknownIdError(record_id)
    with collection.writing():
        reviews = read_reviews(collection)
        if verdict is None:
            reviews.pop(record_id, None)
        else:
            reviews[record_id] = verdict
        text = json.dumps(reviews, indent=1, sort_keys=True)
        write_atomic(collection.layout.label_reviews, text.encode())
    return reviews
