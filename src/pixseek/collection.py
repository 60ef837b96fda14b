"""A collection: one directory holding a manifest, a vector store and a failure log.

:class:`Collection` is the orchestrator the CLI, the API and library users hold;
its parts (store, embedder, failure log) are passed in, so tests and other
backends can substitute any of them. The embedder is loaded on first use, so
commands that only read records (``info``, ``export``) never load a model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pixseek.errors import CollectionNotFoundError, WrongModelError
from pixseek.failures import Failure, FailureLog
from pixseek.manifest import (
    MANIFEST_NAME,
    Manifest,
    ModelEntry,
    read_manifest,
    table_name,
    write_manifest,
)
from pixseek.models.base import Embedder
from pixseek.models.loading import canonical_model_name
from pixseek.models.registry import EmbedderOptions, load_embedder
from pixseek.records import Hit, Record
from pixseek.store.base import VectorStore
from pixseek.store.filters import Filter
from pixseek.store.registry import open_store

EmbedderSource = Embedder | Callable[[], Embedder]


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    root: str
    model: str
    dim: int
    store: str
    images: int
    objects: int
    failures: int
    failed_files: list[Failure]


class Collection:
    def __init__(
        self,
        root: Path,
        manifest: Manifest,
        store: VectorStore,
        failures: FailureLog,
        embedder: EmbedderSource,
    ) -> None:
        self.root = root
        self.manifest = manifest
        self.store = store
        self.failures = failures
        self._embedder_source = embedder
        self._embedder: Embedder | None = None
        self._embedder_lock = threading.Lock()  # server threads must load the model once

    @property
    def model(self) -> str:
        return self.manifest.default_model

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._embedder_lock:
                if self._embedder is None:
                    source = self._embedder_source
                    embedder = source if isinstance(source, Embedder) else source()
                    check_model(self.manifest, embedder)
                    self._embedder = embedder
        return self._embedder

    def search(self, query: str | Sequence[object], options: object = None) -> list[Hit]:
        """Shortcut for :func:`pixseek.search.search` on this collection."""
        from pixseek.search import search

        return search(self, query, options)  # type: ignore[arg-type]

    def get(self, record_id: str) -> Record:
        from pixseek.errors import UnknownIdError

        found = self.store.get([record_id]).get(record_id)
        if found is None:
            raise UnknownIdError(record_id)
        return found

    def count(self, flt: Filter | None = None) -> int:
        return self.store.count(flt)

    def info(self, failure_limit: int = 20) -> CollectionInfo:
        return CollectionInfo(
            root=str(self.root),
            model=self.model,
            dim=self.manifest.model_entry.dim,
            store=self.manifest.store,
            images=self.store.count(Filter.where({"kind": "image"})),
            objects=self.store.count(Filter.where({"kind": "object"})),
            failures=self.failures.count(),
            failed_files=self.failures.list(failure_limit),
        )

    def page(self, flt: Filter | None = None, offset: int = 0, limit: int = 50) -> list[Record]:
        return self.store.page(flt, offset, limit)

    def labels(self, kind: str | None = None) -> dict[str, int]:
        """Label -> record count, most frequent first."""
        counts: dict[str, int] = {}
        flt = Filter.where({"kind": kind}) if kind else None
        for records, _ in self.store.scan(flt):
            for record in records:
                if record.label is not None:
                    counts[record.label] = counts.get(record.label, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    def remove(self, image_ids: list[str]) -> int:
        """Delete images and their objects; returns how many images were removed."""
        existing = self.store.get(image_ids)
        if existing:
            self.store.delete_where(Filter.where({"image_id": list(existing)}))
        return len(existing)

    def close(self) -> None:
        self.failures.close()


def check_model(manifest: Manifest, embedder: Embedder) -> None:
    entry = manifest.models.get(embedder.name)
    if entry is None:
        raise WrongModelError(
            f"this collection was indexed with model {manifest.default_model!r}; "
            f"its vectors are not comparable with {embedder.name!r}. "
            "Use the same --model, or index into a new collection."
        )
    if entry.dim != embedder.dim:
        raise WrongModelError(
            f"model {embedder.name!r} now gives {embedder.dim}-d vectors, "
            f"but the collection holds {entry.dim}-d ones"
        )


def exists(root: Path) -> bool:
    return (root / MANIFEST_NAME).is_file()


def open_collection(
    root: Path | str,
    options: EmbedderOptions | None = None,
    embedder: Embedder | None = None,
    create: bool = False,
    crop_margin: float | None = None,
) -> Collection:
    """Open the collection at ``root`` (creating it with ``create``).

    The model is the collection's own unless ``options``/``embedder`` name one;
    naming another model than the collection's raises :class:`WrongModelError`.
    """
    root = Path(root).expanduser()
    if exists(root):
        manifest = read_manifest(root)
        wanted = embedder or _options_for(manifest, options)
    elif create:
        loaded = embedder or load_embedder(options or EmbedderOptions())
        entry = ModelEntry(
            dim=loaded.dim,
            table=table_name(loaded.name),
            runtime=str(getattr(loaded, "runtime", "auto")),
            precision=str(getattr(loaded, "precision", "auto")),
        )
        manifest = Manifest.new(entry, loaded.name, crop_margin=crop_margin)
        write_manifest(root, manifest)
        wanted = loaded
    else:
        raise CollectionNotFoundError(f"no pixseek collection at {root} (index something first)")
    entry = manifest.model_entry
    store = open_store(manifest.store, root, entry.table, entry.dim)
    collection = Collection(root, manifest, store, FailureLog(root / "failures.sqlite"), wanted)
    if isinstance(wanted, Embedder) or (options is not None and options.model):
        collection.embedder  # noqa: B018 - validate the model now, not at first query
    return collection


def _options_for(manifest: Manifest, options: EmbedderOptions | None) -> EmbedderSource:
    """Unless told otherwise, query with the model, runtime and precision used to index."""
    chosen = options or EmbedderOptions()
    if not chosen.model or canonical_model_name(chosen.model) == manifest.default_model:
        entry = manifest.model_entry
        chosen = replace(
            chosen,
            model=manifest.default_model,
            runtime=entry.runtime if chosen.runtime == "auto" else chosen.runtime,
            precision=entry.precision if chosen.precision == "auto" else chosen.precision,
        )
    return lambda: load_embedder(chosen)
