"""A model change without downtime: build another model's index beside the active one.

Searches keep using the active index while the new one is built from the
collection's own records (resumable: a re-run embeds only what is missing). Once
built, :meth:`Collection.activate` switches searches over in one atomic manifest
write; the old index stays until it is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import PurePath

from pixseek.collection.collection import Collection
from pixseek.collection.manifest import BUILDING, DEFAULT_FAMILY
from pixseek.core.errors import NotFoundError, WrongModelError
from pixseek.ingest.options import DEFAULT_INGEST, IngestOptions, IngestReport, Progress
from pixseek.ingest.runners.local import ingest
from pixseek.ingest.sources.catalog import CatalogSource
from pixseek.models.base import Embedder
from pixseek.models.split import TEXT_SEPARATOR


@dataclass(frozen=True, slots=True)
class ReindexReport:
    index: str
    ingest: IngestReport
    activated: bool


def index_name_for(collection: Collection, model: str) -> str:
    """A short, unused index name from the model's id or folder name."""
    image_model = model.partition(TEXT_SEPARATOR)[0]
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", PurePath(image_model).name).strip("-.")
    base = base[:48] or "index"
    name, number = base, 2
    while name in collection.indexes:
        name, number = f"{base}-{number}", number + 1
    return name


def reindex(
    collection: Collection,
    embedder: Embedder,
    name: str = "",
    activate: bool = False,
    options: IngestOptions = DEFAULT_INGEST,
    progress: Progress | None = None,
    family: str = DEFAULT_FAMILY,
) -> ReindexReport:
    """Embed every record of the collection with ``embedder`` (a model of ``family``)
    into its own index."""
    existing = _existing(collection, embedder, name)
    if existing is None:
        name = name or index_name_for(collection, embedder.name)
        collection.add_index(name, embedder, family, state=BUILDING)
    else:
        name = existing
    report = ingest(collection, CatalogSource(collection), replace(options, index=name), progress)
    collection.mark_ready(name)
    if activate:
        collection.activate(name)
    return ReindexReport(name, report, activate)


def _existing(collection: Collection, embedder: Embedder, name: str) -> str | None:
    """The index this model already has (a resumed reindex), or None for a new one."""
    try:
        index = collection.index(name or embedder.name)
    except NotFoundError:
        return None
    if index.entry.key != embedder.name:
        raise WrongModelError(
            f"index {index.name!r} holds model {index.entry.key!r}, not {embedder.name!r}"
        )
    index.bind(embedder)
    return index.name
