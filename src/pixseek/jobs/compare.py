"""Which index serves a collection best: measured on its held-out judgements, and on
labels or captions when given.

:func:`compare` measures the active index against another (a shadow built by
``reindex``) and, asked to, switches searches to it only when it wins. :func:`rank`
measures every index, with its cost (dimension, images embedded per second), and
``candidates`` measures models not yet indexed on a sample of the collection first.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pixseek.collection.collection import Collection
from pixseek.collection.feedback import HELD_OUT_FRACTION
from pixseek.collection.index import Index
from pixseek.core.errors import InvalidInputError
from pixseek.core.filters import Filter
from pixseek.core.paths import local_path
from pixseek.imaging.decode import load_image_file
from pixseek.jobs.evaluate import EvalReport, FeedbackReport, evaluate, feedback_eval
from pixseek.models.base import Embedder
from pixseek.training.data import DEFAULT_TEMPLATES, Pair

SPEED_SAMPLE = 16  # images embedded to measure a model's speed
NOTHING_TO_MEASURE = (
    "nothing to measure: no held-out judgement has a text or record query and a relevant "
    "result; measure on the collection's labels or captions (--labels or --captions; "
    '"labels": true in a compare job), or store more judgements'
)


@dataclass(frozen=True, slots=True)
class IndexScore:
    index: str
    model: str
    dim: int
    feedback: FeedbackReport
    truth: EvalReport | None = None
    images_per_second: float | None = None
    # Ranked beside models not indexed yet, which have no judgements: only text→image R@5
    # on the images every row was measured on counts, or the rows would not be comparable.
    by_truth: bool = False

    @property
    def score(self) -> float | None:
        """What decides: held-out nDCG@10 when judgements count (and every row has them),
        else text→image R@5."""
        if self.feedback.ndcg_at_10 is not None and not self.by_truth:
            return self.feedback.ndcg_at_10
        if self.truth is not None and self.truth.text_to_image:
            return self.truth.text_to_image.get(5, next(iter(self.truth.text_to_image.values())))
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "model": self.model,
            "dim": self.dim,
            "score": self.score,
            "feedback": self.feedback.to_dict(),
            "truth": self.truth.to_dict() if self.truth is not None else None,
            "images_per_second": self.images_per_second,
            "ranked_by": "text_to_image_r5" if self.by_truth else "auto",
        }


@dataclass(frozen=True, slots=True)
class CompareReport:
    active: IndexScore
    shadow: IndexScore
    better: bool
    activated: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "active": self.active.to_dict(),
            "shadow": self.shadow.to_dict(),
            "better": self.better,
            "activated": self.activated,
        }


def measure(
    collection: Collection,
    index: Index,
    pairs: Sequence[Pair] | None = None,
    zero_shot: bool = False,
    fraction: float = HELD_OUT_FRACTION,
    embedder: Embedder | None = None,
    speed: bool = False,
    by_truth: bool = False,
) -> IndexScore:
    """One index (or, with ``embedder``, a model not indexed yet) on every measure."""
    model = embedder or index.embedder
    feedback = (
        feedback_eval(index, collection.feedback.list(), fraction=fraction)
        if embedder is None
        else FeedbackReport(0, 0)
    )
    truth = None
    if pairs:
        truth = evaluate(
            index, pairs, embedder=embedder, zero_shot=zero_shot, templates=DEFAULT_TEMPLATES
        )
    rate = images_per_second(collection, model) if speed else None
    name = index.name if embedder is None else f"({model.name})"
    return IndexScore(name, model.name, model.dim, feedback, truth, rate, by_truth)


def images_per_second(collection: Collection, embedder: Embedder) -> float | None:
    """Images embedded per second on a few of the collection's images (decoding included),
    after one untimed image: a model's first call loads it (an ONNX session, lazy weights),
    which had made the first-measured model look five times slower than the same model
    measured second."""
    records = collection.page(Filter.where({"kind": "image"}), 0, SPEED_SAMPLE)
    if not records:
        return None
    embedder.embed_images([load_image_file(local_path(records[0].path))])
    started = time.perf_counter()
    embedder.embed_images([load_image_file(local_path(r.path)) for r in records])
    return len(records) / max(time.perf_counter() - started, 1e-9)


def shadow_of(collection: Collection, name: str = "") -> Index:
    """The named index, or the newest ready index that is not the active one."""
    if name:
        return collection.index(name)
    others = [i for n, i in collection.indexes.items() if n != collection.default_index and i.ready]
    if not others:
        raise InvalidInputError(
            "this collection has one index: build another with `pixseek reindex` to compare"
        )
    return others[-1]


def compare(
    collection: Collection,
    shadow: str = "",
    pairs: Sequence[Pair] | None = None,
    zero_shot: bool = False,
    activate_if_better: bool = False,
    fraction: float = HELD_OUT_FRACTION,
) -> CompareReport:
    """The active index against ``shadow``; with ``activate_if_better`` the shadow becomes
    the active index only when its score is higher (a tie keeps the active one)."""
    active = collection.index()
    other = shadow_of(collection, shadow)
    if other.name == active.name:
        raise InvalidInputError(f"index {other.name!r} is the active one; name another")
    ours = measure(collection, active, pairs, zero_shot, fraction)
    theirs = measure(collection, other, pairs, zero_shot, fraction)
    if ours.score is None or theirs.score is None:
        raise InvalidInputError(NOTHING_TO_MEASURE)
    better = theirs.score > ours.score
    if better and activate_if_better:
        collection.activate(other.name)
    return CompareReport(ours, theirs, better, better and activate_if_better)


def sample_pairs(pairs: Sequence[Pair], size: int, seed: int = 0) -> list[Pair]:
    """The pairs of up to ``size`` images, chosen at random (for candidates)."""
    images = sorted({p.image_id for p in pairs})
    if len(images) <= size:
        return list(pairs)
    chosen = set(np.random.default_rng(seed).choice(images, size, replace=False).tolist())
    return [p for p in pairs if p.image_id in chosen]


def rank(
    collection: Collection,
    pairs: Sequence[Pair] | None = None,
    zero_shot: bool = False,
    candidates: Sequence[Embedder] = (),
    sample: int = 200,
    fraction: float = HELD_OUT_FRACTION,
) -> list[IndexScore]:
    """Every index, and every candidate model, best first.

    Candidate models are embedded anew, so they are measured on a sample of the pairs; the
    indexes are then measured on that same sample and every row is ranked by its
    text→image R@5 there (a recall among 200 images is higher than among 400, whatever the
    model: the same model as a candidate had outscored its own index)."""
    if candidates and not pairs:
        raise InvalidInputError(
            "candidate models are measured on labels or captions: give --labels or --captions"
        )
    shared = bool(candidates)
    measured = sample_pairs(pairs or [], sample) if shared else pairs
    scores = [
        measure(collection, index, measured, zero_shot, fraction, speed=True, by_truth=shared)
        for _, index in sorted(collection.indexes.items())
        if index.ready
    ]
    if all(s.score is None for s in scores):  # a ranking of nothing would still look like one
        raise InvalidInputError(NOTHING_TO_MEASURE)
    for embedder in candidates:
        scores.append(
            measure(
                collection,
                collection.index(),
                measured,
                zero_shot,
                embedder=embedder,
                speed=True,
                by_truth=True,
            )
        )
    return sorted(scores, key=lambda s: -1.0 if s.score is None else -s.score)


def ranking_dict(scores: Sequence[IndexScore], active: str) -> list[dict[str, Any]]:
    return [{**s.to_dict(), "active": s.index == active} for s in scores]
