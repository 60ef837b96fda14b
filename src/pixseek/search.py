"""Search: compose one query vector from weighted parts, then ask the store.

A query is a list of :class:`Term` values; each term is a text, a stored record
(image or object), a new image (optionally a box in it) or a box drawn on a
stored image. Negative weights push results away. Parts of one kind are
embedded in one batch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from pixseek.collection import Collection
from pixseek.errors import EmptyQueryError, ImageDecodeError, InvalidInputError, UnknownIdError
from pixseek.imaging import crop_box, decode_image, decode_options_for, validate_box
from pixseek.models.base import Vectors, l2_normalize
from pixseek.records import BoxTuple, Hit, Kind
from pixseek.store.filters import Filter


@dataclass(frozen=True, slots=True)
class TextQuery:
    text: str


@dataclass(frozen=True, slots=True)
class RecordQuery:
    """An indexed image or object, by id: its stored vector is the query."""

    id: str


@dataclass(frozen=True, slots=True)
class ImageQuery:
    """A new image (bytes), or a box inside it."""

    data: bytes
    box: BoxTuple | None = None


@dataclass(frozen=True, slots=True)
class RegionQuery:
    """A box drawn on an indexed image."""

    image_id: str
    box: BoxTuple


QueryPart = TextQuery | RecordQuery | ImageQuery | RegionQuery


@dataclass(frozen=True, slots=True)
class Term:
    part: QueryPart
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Feedback:
    """Relevance feedback: records marked relevant / not relevant (Rocchio's update).

    ``q' = alpha * q + beta * mean(positives) - gamma * mean(negatives)``; the
    classic weights trust the user's marks less than the query itself.
    """

    positives: tuple[str, ...] = ()
    negatives: tuple[str, ...] = ()
    alpha: float = 1.0
    beta: float = 0.75
    gamma: float = 0.25

    def __bool__(self) -> bool:
        return bool(self.positives or self.negatives)


@dataclass(frozen=True, slots=True)
class SearchOptions:
    k: int = 10
    kind: Kind | None = None
    where: Filter = field(default_factory=Filter)
    min_score: float | None = None
    feedback: Feedback = field(default_factory=Feedback)

    def __post_init__(self) -> None:
        if self.k < 1:
            raise InvalidInputError(f"k must be at least 1, got {self.k}")

    def store_filter(self) -> Filter:
        kind = Filter.where({"kind": self.kind}) if self.kind else Filter()
        return kind.and_(self.where)


_TERM = re.compile(r"^(?P<sign>[+-]?)(?:(?P<weight>\d+(?:\.\d+)?)\*)?(?P<body>.*)$", re.DOTALL)


def parse_term(token: str) -> Term:
    """``dog``, ``+dog``, ``-grass``, ``-0.5*grass``, ``id:3f2a…``, ``-id:3f2a…``."""
    match = _TERM.match(token.strip())
    assert match is not None  # the pattern matches any string
    body = match["body"].strip()
    if not body:
        raise EmptyQueryError(f"query term {token!r} is empty")
    weight = float(match["weight"] or 1.0) * (-1.0 if match["sign"] == "-" else 1.0)
    part: QueryPart = RecordQuery(body[3:]) if body.startswith("id:") else TextQuery(body)
    return Term(part, weight)


def _load_collection_image(collection: Collection, image_id: str) -> Image.Image:
    record = collection.get(image_id)
    if record.kind != "image":
        raise InvalidInputError(f"{image_id!r} is an object; draw boxes on images")
    try:
        return decode_image(Path(record.path).read_bytes())
    except OSError as exc:
        raise ImageDecodeError(f"the file of image {image_id!r} is unreadable: {exc}") from exc


def _image_input(collection: Collection, part: ImageQuery | RegionQuery) -> Image.Image:
    margin = collection.manifest.crop_margin
    if isinstance(part, RegionQuery):
        image = _load_collection_image(collection, part.image_id)
        return crop_box(image, validate_box(part.box, image.width, image.height), margin)
    if part.box is not None:
        return crop_box(decode_image(part.data), part.box, margin)
    # decode a whole image the way ingest does, so an indexed file finds itself at ~1.0
    size = getattr(collection.embedder, "input_size", None)
    return decode_image(part.data, decode_options_for(size))


def query_vector(collection: Collection, terms: Sequence[Term]) -> Vectors:
    """The weighted sum of the terms' unit vectors, normalised."""
    if not terms:
        raise EmptyQueryError("the query is empty: give a text, an image or an id")
    texts = [t for t in terms if isinstance(t.part, TextQuery)]
    records = [t for t in terms if isinstance(t.part, RecordQuery)]
    images = [t for t in terms if isinstance(t.part, ImageQuery | RegionQuery)]
    vectors: list[Vectors] = []
    weights: list[float] = []
    if texts:
        vectors.append(collection.embedder.embed_texts([t.part.text for t in texts]))  # type: ignore[union-attr]
        weights += [t.weight for t in texts]
    if records:
        vectors.append(_stored_vectors(collection, [t.part.id for t in records]))  # type: ignore[union-attr]
        weights += [t.weight for t in records]
    if images:
        inputs = [_image_input(collection, t.part) for t in images]  # type: ignore[arg-type]
        vectors.append(collection.embedder.embed_images(inputs))
        weights += [t.weight for t in images]
    combined = np.asarray(weights, dtype=np.float32) @ np.concatenate(vectors, axis=0)
    if float(np.linalg.norm(combined)) < 1e-6:
        raise EmptyQueryError("the query terms cancel out; nothing is left to search for")
    return l2_normalize(combined)


def _stored_vectors(collection: Collection, ids: Sequence[str]) -> Vectors:
    stored = collection.store.get_vectors(list(ids))
    for record_id in ids:
        if record_id not in stored:
            raise UnknownIdError(record_id)
    return np.stack([stored[record_id] for record_id in ids])


def apply_feedback(collection: Collection, query: Vectors | None, feedback: Feedback) -> Vectors:
    """Rocchio's update of the query vector (a query may be absent: feedback alone)."""
    dim = collection.manifest.model_entry.dim
    vector = np.zeros(dim, np.float32) if query is None else feedback.alpha * query
    if feedback.positives:
        vector = vector + feedback.beta * _stored_vectors(collection, feedback.positives).mean(0)
    if feedback.negatives:
        vector = vector - feedback.gamma * _stored_vectors(collection, feedback.negatives).mean(0)
    if float(np.linalg.norm(vector)) < 1e-6:
        raise EmptyQueryError("nothing to search for: give a query or mark a relevant result")
    return l2_normalize(vector)


def search_vector(collection: Collection, vector: Vectors, options: SearchOptions) -> list[Hit]:
    scored = collection.store.search(vector, options.k, options.store_filter())
    hits = [Hit.from_record(record, score) for record, score in scored]
    if options.min_score is not None:
        hits = [hit for hit in hits if hit.score >= options.min_score]
    return hits


def search(
    collection: Collection,
    query: str | Term | Sequence[Term | str],
    options: SearchOptions | None = None,
) -> list[Hit]:
    """Ranked hits for a query: a text, a term, or several terms with weights.

    Plain strings are texts taken literally; use :func:`parse_term` for the
    ``+dog -grass`` syntax.
    """
    options = options or SearchOptions()
    if isinstance(query, str | Term):
        query = [query]
    terms = [Term(TextQuery(item)) if isinstance(item, str) else item for item in query]
    vector = query_vector(collection, terms) if terms or not options.feedback else None
    if options.feedback:
        vector = apply_feedback(collection, vector, options.feedback)
    assert vector is not None
    return search_vector(collection, vector, options)
