"""Nearest-neighbour classification: the labels of the most similar labelled images vote.

No model per class: any number of labels works, and a new label is learnt by
indexing one labelled image. Each of the ``k`` nearest labelled images votes for
its label with its cosine similarity; the confidence is the label's share of the votes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from pixseek.collection.collection import Collection
from pixseek.collection.index import Index
from pixseek.core.errors import ImageDecodeError, InvalidInputError
from pixseek.core.filters import Condition, Filter
from pixseek.core.records import Record
from pixseek.core.vectors import Vectors
from pixseek.imaging.decode import decode_image, decode_options_for
from pixseek.stores.knn import search_many

ALTERNATIVES = 5
# Neighbours fetched per query, at least: the graph walks four candidates per wanted hit,
# so 64 make a walk 256 wide. bench/classify.py, a million vectors in 100,000 classes,
# vote of 10: asking for 30 (the store's breadth of 128) voted the wrong class for 12% of
# queries; this pool for 2.8%, at 1.3 ms a query (exact kNN: 4.3 ms).
VOTE_POOL = 64


def vote_pool(k: int) -> int:
    """How many neighbours to fetch for a vote of ``k``: unlabelled images may sit among
    them, and a wider graph walk finds a small class's members far more often."""
    return max(k * 3, VOTE_POOL)


@dataclass(frozen=True, slots=True)
class ClassifyOptions:
    k: int = 10
    where: Filter = field(default_factory=Filter)  # which labelled images may vote

    def __post_init__(self) -> None:
        if self.k < 1:
            raise InvalidInputError(f"k must be at least 1, got {self.k}")


@dataclass(frozen=True, slots=True)
class Prediction:
    label: str | None
    confidence: float
    alternatives: list[tuple[str, float]]  # the best labels with their confidence


@dataclass(frozen=True, slots=True)
class SplitAccuracy:
    split: str
    images: int
    top1: float
    top5: float


def vote(neighbours: Sequence[tuple[Record, float]], k: int) -> Prediction:
    weights: dict[str, float] = {}
    for record, score in [(r, s) for r, s in neighbours if r.label is not None][:k]:
        assert record.label is not None
        weights[record.label] = weights.get(record.label, 0.0) + max(score, 0.0)
    total = sum(weights.values())
    if not weights or total <= 0:
        return Prediction(None, 0.0, [])
    ranked = sorted(weights.items(), key=lambda item: (-item[1], item[0]))
    shares = [(label, round(weight / total, 6)) for label, weight in ranked[:ALTERNATIVES]]
    return Prediction(shares[0][0], shares[0][1], shares)


def classify_vectors(
    index: Index, vectors: Vectors, options: ClassifyOptions = ClassifyOptions()
) -> list[Prediction]:
    """A vote for each vector; an :class:`InvalidInputError` where no image that may vote
    has a label (a label of None from every neighbour would read as an answer)."""
    pool = Filter.where({"kind": "image"}).and_(options.where)
    # one batched search for all (the graph walks run on every core)
    found = search_many(index.store, vectors, vote_pool(options.k), pool)
    predictions = [vote(hits, options.k) for hits in found]
    if predictions and all(p.label is None for p in predictions) and not _any_label(index, pool):
        raise InvalidInputError(
            "no image that may vote has a label: index labelled images "
            "(--label-from-folder, or a COCO file's labels) to classify by them"
        )
    return predictions


def _any_label(index: Index, pool: Filter) -> bool:
    """Does any image in ``pool`` carry a label? (Asked only when no vote found one.)"""
    return any(r.label for batch, _ in index.store.scan(pool) for r in batch)


def classify_each(
    collection: Collection,
    images: Sequence[bytes],
    index: Index | None = None,
    options: ClassifyOptions = ClassifyOptions(),
) -> list[Prediction | ImageDecodeError]:
    """:func:`classify_images` for many files, where one that cannot be decoded is its
    error in the list, and the others are still classified (one model call for all)."""
    index = index or collection.index()
    decode = decode_options_for(index.embedder.capabilities.input_size)
    pictures: list[Image.Image | ImageDecodeError] = []
    for data in images:
        try:
            pictures.append(decode_image(data, decode))
        except ImageDecodeError as exc:
            pictures.append(exc)
    readable = [p for p in pictures if not isinstance(p, ImageDecodeError)]
    votes = iter(
        classify_vectors(index, index.embedder.embed_images(readable), options) if readable else []
    )
    return [p if isinstance(p, ImageDecodeError) else next(votes) for p in pictures]


def classify_images(
    collection: Collection,
    images: Sequence[bytes],
    index: Index | None = None,
    options: ClassifyOptions = ClassifyOptions(),
) -> list[Prediction]:
    """A vote for each image; the first that cannot be decoded is raised."""
    predictions = []
    for answer in classify_each(collection, images, index, options):
        if isinstance(answer, ImageDecodeError):
            raise answer
        predictions.append(answer)
    return predictions


def evaluate_split(
    collection: Collection,
    split: str = "test",
    index: Index | None = None,
    options: ClassifyOptions = ClassifyOptions(),
) -> SplitAccuracy:
    """Top-1/top-5 accuracy on the labelled images of ``split``, voted by all the others."""
    index = index or collection.index()
    held_out = [
        r for r in collection.records(Filter.where({"kind": "image", "split": split})) if r.label
    ]
    if not held_out:
        raise InvalidInputError(
            f"no labelled images with split={split!r} in this collection: hold some out when "
            "indexing a folder (pixseek index ... --label-from-folder --holdout 0.2), or "
            "name another split with --split"
        )
    others = Filter((Condition("split", (split,), negate=True),))
    voting = ClassifyOptions(options.k, options.where.and_(others))
    stored = index.store.get_vectors([r.id for r in held_out])
    vectors = np.stack([stored[r.id] for r in held_out])
    predictions = classify_vectors(index, vectors, voting)
    top1 = sum(p.label == r.label for p, r in zip(predictions, held_out, strict=True))
    top5 = sum(
        r.label in [label for label, _ in p.alternatives]
        for p, r in zip(predictions, held_out, strict=True)
    )
    count = len(held_out)
    return SplitAccuracy(split, count, round(top1 / count, 6), round(top5 / count, 6))
