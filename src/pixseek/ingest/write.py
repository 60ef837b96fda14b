"""The one way images get into a collection: prepared items, written into every index.

Folder and COCO ingest (local and Ray runners), API and web uploads and reindex all
call :func:`write_prepared`, so every index of a collection holds the same images,
objects and regions whichever way they arrived. A reindex names its one new index;
everything else writes to all of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pixseek.collection.collection import Collection
from pixseek.collection.index import Index
from pixseek.core.filters import Filter
from pixseek.ingest.stages import EmbedStep, ImageState, Prepared, StoreStep
from pixseek.models.base import Embedder, Vectors


def target_indexes(collection: Collection, name: str = "") -> list[Index]:
    """The named index, or every index of the collection (the active one first)."""
    if name:
        return [collection.index(name)]
    first = collection.index()
    return [first, *(i for n, i in sorted(collection.indexes.items()) if n != first.name)]


def embedders_of(indexes: Sequence[Index]) -> dict[str, Embedder]:
    return {index.name: index.embedder for index in indexes}


def image_state(indexes: Sequence[Index]) -> ImageState:
    """What the target indexes hold of each image (see :data:`ImageState`)."""
    states: list[dict[str, tuple[str, str]]] = []
    for index in indexes:
        state: dict[str, tuple[str, str]] = {}
        for records, _ in index.store.scan(Filter.where({"kind": "image"})):
            for record in records:
                state[record.id] = (record.content_hash, record.source_hash)
        states.append(state)
    merged: dict[str, tuple[str, str] | None] = {}
    for image_id in set().union(*states):
        values = {state.get(image_id) for state in states}
        merged[image_id] = values.pop() if len(values) == 1 else None
    return merged


def write_prepared(
    indexes: Sequence[Index],
    batch: Sequence[Prepared],
    vectors: Mapping[str, Vectors] | None = None,
) -> None:
    """Embed ``batch`` with each index's model (unless ``vectors`` come embedded already,
    by index name) and store it in each index."""
    if not batch:
        return
    if vectors is None:
        vectors = EmbedStep(embedders_of(indexes))(batch)
    for index in indexes:
        StoreStep(index.store)(batch, vectors[index.name])


def persist(indexes: Sequence[Index]) -> None:
    for index in indexes:
        index.store.persist()
