"""Search: compose one query vector from weighted parts, then ask the index's store.

Parts of one kind are embedded in one batch; stored records contribute their
stored vectors; relevance feedback moves the vector (Rocchio).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from PIL import Image

from pixseek.collection.collection import Collection
from pixseek.collection.index import Index
from pixseek.core.errors import EmptyQueryError, ImageDecodeError, InvalidInputError, UnknownIdError
from pixseek.core.paths import local_path
from pixseek.core.query import (
    AUTO,
    Feedback,
    ImageQuery,
    RecordQuery,
    RegionQuery,
    SearchOptions,
    Term,
    TextQuery,
)
from pixseek.core.records import Hit
from pixseek.core.vectors import Vectors, l2_normalize
from pixseek.imaging.crops import crop_box, validate_box
from pixseek.imaging.decode import decode_image, decode_options_for, load_image_file
from pixseek.models.base import require_text


def _load_collection_image(collection: Collection, image_id: str) -> Image.Image:
    record = collection.get(image_id)
    if record.kind != "image":
        raise InvalidInputError(f"{image_id!r} is an object; draw boxes on images")
    try:
        return load_image_file(local_path(record.path))
    except ImageDecodeError as exc:
        raise ImageDecodeError(f"the file of image {image_id!r} is unreadable: {exc}") from exc


def _image_input(
    collection: Collection, index: Index, part: ImageQuery | RegionQuery
) -> Image.Image:
    margin = collection.crop_margin
    if isinstance(part, RegionQuery):
        image = _load_collection_image(collection, part.image_id)
        return crop_box(image, validate_box(part.box, image.width, image.height), margin)
    if part.box is not None:
        return crop_box(decode_image(part.data), part.box, margin)
    # decode a whole image the way ingest does, so an indexed file finds itself at ~1.0
    size = index.embedder.capabilities.input_size
    return decode_image(part.data, decode_options_for(size))


def query_vector(collection: Collection, index: Index, terms: Sequence[Term]) -> Vectors:
    """The weighted sum of the terms' unit vectors, normalised."""
    if not terms:
        raise EmptyQueryError("the query is empty: give a text, an image or an id")
    texts = [(t.part.text, t.weight) for t in terms if isinstance(t.part, TextQuery)]
    records = [(t.part.id, t.weight) for t in terms if isinstance(t.part, RecordQuery)]
    images = [(t.part, t.weight) for t in terms if isinstance(t.part, ImageQuery | RegionQuery)]
    vectors: list[Vectors] = []
    weights: list[float] = []
    if texts:
        require_text(index.embedder)
        vectors.append(index.embedder.embed_texts([text for text, _ in texts]))
        weights += [weight for _, weight in texts]
    if records:
        vectors.append(stored_vectors(index, [record_id for record_id, _ in records]))
        weights += [weight for _, weight in records]
    if images:
        inputs = [_image_input(collection, index, part) for part, _ in images]
        vectors.append(index.embedder.embed_images(inputs))
        weights += [weight for _, weight in images]
    combined = np.asarray(weights, dtype=np.float32) @ np.concatenate(vectors, axis=0)
    if float(np.linalg.norm(combined)) < 1e-6:
        raise EmptyQueryError("the query terms cancel out; nothing is left to search for")
    return l2_normalize(combined)


def stored_vectors(index: Index, ids: Sequence[str]) -> Vectors:
    """The stored vectors of records, in the order given; unknown ids raise."""
    stored = index.store.get_vectors(list(ids))
    for record_id in ids:
        if record_id not in stored:
            raise UnknownIdError(record_id)
    return np.stack([stored[record_id] for record_id in ids])


def apply_feedback(index: Index, query: Vectors | None, feedback: Feedback) -> Vectors:
    """Rocchio's update of the query vector (a query may be absent: feedback alone)."""
    vector = np.zeros(index.dim, np.float32) if query is None else feedback.alpha * query
    if feedback.positives:
        vector = vector + feedback.beta * stored_vectors(index, feedback.positives).mean(0)
    if feedback.negatives:
        vector = vector - feedback.gamma * stored_vectors(index, feedback.negatives).mean(0)
    if float(np.linalg.norm(vector)) < 1e-6:
        raise EmptyQueryError("nothing to search for: give a query or mark a relevant result")
    return l2_normalize(vector)


def search_vector(index: Index, vector: Vectors, options: SearchOptions) -> list[Hit]:
    scored = index.store.search(vector, options.k, options.store_filter())
    hits = [Hit(record, score) for record, score in scored]
    cutoff = options.min_score
    if isinstance(cutoff, str):
        raise InvalidInputError('min_score "auto" is resolved by search() from its query')
    if cutoff is not None:
        hits = [hit for hit in hits if hit.score >= cutoff]
    return hits


def resolve_min_score(index: Index, terms: Sequence[Term], min_score: object) -> float | None:
    """``"auto"``: for a query by image, the cosine under which the index's calibration
    found 99% of images' nearest unrelated images, so a query that has nothing alike gets
    nothing, whatever the model's scale; for a text query, the cutoff measured on the
    collection's labels (:mod:`pixseek.jobs.text_cutoff`: text and image vectors meet on
    a scale of their own). A query mixing both has no measured scale: it needs a number."""
    if min_score != AUTO:
        return min_score if isinstance(min_score, float | int) else None
    texts = sum(isinstance(term.part, TextQuery) for term in terms)
    if not terms or 0 < texts < len(terms):
        raise InvalidInputError(
            'min_score "auto" is measured for queries by image or by text, not for both in '
            "one query: give a number"
        )
    calibration = index.entry.calibration
    if calibration is None:
        raise InvalidInputError(
            f'index {index.name!r} has no calibration for min_score "auto": run `pixseek calibrate`'
        )
    if not texts:
        return calibration.unrelated
    cutoff = calibration.text
    if cutoff is None:
        raise InvalidInputError(
            'min_score "auto" for text queries is measured on the collection\'s labels '
            "(`pixseek calibrate` measures it where images or objects carry two labels or "
            "more); give a number"
        )
    if not cutoff.reached:
        raise InvalidInputError(
            f"on this collection's labels no text cutoff reached precision "
            f'{calibration.target_precision} (`pixseek info`): min_score "auto" would keep '
            "nothing; give a number"
        )
    return cutoff.threshold


def search(
    collection: Collection,
    query: str | Term | Sequence[Term | str],
    options: SearchOptions | None = None,
) -> list[Hit]:
    """Ranked hits for a query: a text, a term, or several terms with weights.

    Plain strings are texts taken literally (a phrase is one query); use
    :func:`pixseek.core.query.parse_term` for the ``+dog -grass`` syntax.
    """
    options = options or SearchOptions()
    index = collection.index(options.index)
    if isinstance(query, str | Term):
        query = [query]
    terms = [Term(TextQuery(item)) if isinstance(item, str) else item for item in query]
    cutoff = resolve_min_score(index, terms, options.min_score)
    vector = query_vector(collection, index, terms) if terms or not options.feedback else None
    if options.feedback:
        vector = apply_feedback(index, vector, options.feedback)
    assert vector is not None
    return search_vector(index, vector, replace(options, min_score=cutoff))
