"""A collection: a record catalog plus named indexes, in one directory.

:class:`Collection` is what the CLI, the API and library users hold. Its parts
(indexes with their stores and embedders, the failure log) are passed in, so
tests and other backends can substitute any of them. Every index's store carries
the records' fields beside the vectors (filtered vector search needs them); the
default index's store is the catalog that record lookups read.

Writers (ingest, uploads, removal) hold the collection's write lock, a lock file
shared by every process; readers never take it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pixseek.collection.failures import Failure, FailureLog
from pixseek.collection.feedback import FeedbackLog
from pixseek.collection.index import EmbedderSource, Index
from pixseek.collection.layout import Layout
from pixseek.collection.manifest import (
    DEFAULT_FAMILY,
    READY,
    IndexEntry,
    Manifest,
    read_manifest,
    write_manifest,
)
from pixseek.core.calibration import CopyCalibration
from pixseek.core.errors import (
    CollectionBusyError,
    CollectionExistsError,
    CollectionNotFoundError,
    InvalidInputError,
    UnknownIdError,
)
from pixseek.core.filters import Filter
from pixseek.core.records import Record
from pixseek.models.base import Embedder
from pixseek.models.options import EmbedderOptions, canonical_model_name
from pixseek.models.registry import family_name, load_embedder
from pixseek.stores.registry import open_store

WAIT_FOREVER = -1.0


@dataclass(frozen=True, slots=True)
class IndexInfo:
    name: str
    model: str
    family: str
    dim: int
    runtime: str
    precision: str
    records: int
    state: str
    # how its model scores copies, and the levels duplicates and match use (None: too few
    # images to measure yet)
    calibration: CopyCalibration | None = None


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    root: str
    model: str
    dim: int
    runtime: str
    precision: str
    precision_note: str
    store: str
    images: int
    objects: int
    failures: int
    failed_files: list[Failure]
    indexes: list[IndexInfo]
    calibration: CopyCalibration | None = None  # of the active index


class Collection:
    def __init__(
        self,
        layout: Layout,
        manifest: Manifest,
        indexes: dict[str, Index],
        failures: FailureLog,
        opener: Callable[[str, IndexEntry, EmbedderSource], Index] | None = None,
    ) -> None:
        self.layout = layout
        self._manifest = manifest
        self.indexes = indexes
        self.failures = failures
        self._opener = opener
        self._manifest_version = _version(layout.manifest)
        self._thread_lock = threading.RLock()
        self._write_depth = 0
        self._file_lock: Any = None
        self._feedback: FeedbackLog | None = None
        self.closed = False

    @property
    def root(self) -> Path:
        return self.layout.root

    @property
    def feedback(self) -> FeedbackLog:
        """The judgements stored with the collection (opened on first use)."""
        with self._thread_lock:
            if self._feedback is None:
                self._check_open()
                self._feedback = FeedbackLog(self.layout.feedback)
            return self._feedback

    @property
    def crop_margin(self) -> float:
        return self._manifest.crop_margin

    @property
    def model(self) -> str:
        """The model of the default index."""
        return self.index().model

    def index(self, name_or_model: str = "") -> Index:
        """The index of that name or model, or the default (active) one."""
        key = canonical_model_name(name_or_model) if name_or_model else ""
        return self.indexes[self._manifest.index_name(key)]

    @property
    def default_index(self) -> str:
        return self._manifest.default_index

    @property
    def regions(self) -> tuple[float, ...]:
        """Window scales of the label-free region objects every image gets (none: off)."""
        return tuple(self._manifest.regions)

    def set_regions(self, scales: tuple[float, ...]) -> None:
        self._update(regions=list(scales))

    def activate(self, name: str) -> None:
        """Make ``name`` the index searches use by default: one atomic manifest write."""
        index = self.index(name)
        if not index.ready:
            raise InvalidInputError(
                f"index {index.name!r} is still being built; finish `pixseek reindex` first"
            )
        self._update(default_index=index.name)

    def set_calibration(self, name: str, calibration: CopyCalibration) -> None:
        """Keep an index's copy calibration in the manifest (one atomic write)."""
        index = self.index(name)
        entry = index.entry.model_copy(update={"calibration": calibration})
        index.entry = entry
        self._update(indexes={**self._manifest.indexes, index.name: entry})

    def mark_ready(self, name: str) -> None:
        index = self.index(name)
        entry = index.entry.model_copy(update={"state": READY})
        index.entry = entry
        self._update(indexes={**self._manifest.indexes, index.name: entry})

    def drop_index(self, name: str) -> str:
        """Delete an index that is not the active one, with its vectors; returns its name."""
        index = self.index(name)
        if index.name == self._manifest.default_index:
            raise InvalidInputError(
                f"index {index.name!r} is the active one; activate another before dropping it"
            )
        with self.writing():
            indexes = {n: e for n, e in self._manifest.indexes.items() if n != index.name}
            self._update(indexes=indexes)
            self.indexes.pop(index.name)
            index.store.drop()
        return index.name

    def _update(self, **fields: object) -> None:
        with self.writing():
            self._manifest = self._manifest.model_copy(update=fields)
            write_manifest(self.layout.manifest, self._manifest)
            self._manifest_version = _version(self.layout.manifest)

    @property
    def catalog(self) -> Index:
        return self.index()

    def add_index(
        self, name: str, embedder: Embedder, family: str = DEFAULT_FAMILY, state: str = READY
    ) -> Index:
        """Add a named index for another model (its vectors are built by ingest or reindex)."""
        if name in self.indexes:
            raise CollectionExistsError(f"index {name!r} already exists")
        if self._opener is None:
            raise InvalidInputError("this collection was built without an index opener")
        entry = IndexEntry.for_embedder(embedder, family, state=state)
        with self.writing():
            index = self._opener(name, entry, embedder)
            self._update(indexes={**self._manifest.indexes, name: entry})
            self.indexes[name] = index
        return index

    @contextmanager
    def writing(self, timeout: float = WAIT_FOREVER) -> Iterator[None]:
        """Hold the collection's write lock (across processes) while writing.

        Waits for another writer up to ``timeout`` seconds (forever by default),
        then raises :class:`CollectionBusyError`. A collection deleted meanwhile
        raises :class:`CollectionNotFoundError`, so nothing is written into it.
        """
        from filelock import FileLock, Timeout

        self._check_open()
        with self._thread_lock:  # re-entrant: a writer may call other writing methods
            if self._write_depth == 0:
                lock = FileLock(str(self.layout.write_lock))
                try:
                    lock.acquire(timeout=timeout)
                except Timeout as exc:
                    raise CollectionBusyError(
                        f"another process is writing to the collection at {self.root}; "
                        "try again when it has finished"
                    ) from exc
                try:
                    self._check_open()  # deleted while this writer waited
                    for index in self.indexes.values():
                        index.store.refresh()
                except BaseException:
                    lock.release()
                    raise
                self._file_lock = lock
            self._write_depth += 1
            try:
                self._check_open()
                yield
            finally:
                self._write_depth -= 1
                if self._write_depth == 0 and self._file_lock is not None:
                    self._file_lock.release()
                    self._file_lock = None

    @property
    def stale(self) -> bool:
        """Whether another process (or handle) rewrote the manifest since this one read it:
        an index was added, activated or dropped."""
        return _version(self.layout.manifest) != self._manifest_version

    def _check_open(self) -> None:
        if self.closed or not self.layout.exists():
            raise CollectionNotFoundError(f"the collection at {self.root} has been deleted")

    def get(self, record_id: str) -> Record:
        found = self.catalog.store.get([record_id]).get(record_id)
        if found is None:
            raise UnknownIdError(record_id)
        return found

    def get_many(self, ids: Sequence[str]) -> dict[str, Record]:
        return self.catalog.store.get(list(ids))

    def count(self, flt: Filter | None = None) -> int:
        return self.catalog.store.count(flt)

    def records(self, flt: Filter | None = None) -> Iterator[Record]:
        """Every matching record, streamed in storage order."""
        for batch, _ in self.catalog.store.scan(flt):
            yield from batch

    def page(self, flt: Filter | None = None, offset: int = 0, limit: int = 50) -> list[Record]:
        return self.catalog.store.page(flt, offset, limit)

    def image_ids_with_objects(self, label: str) -> list[str]:
        """Ids of images holding at least one object labelled ``label``."""
        flt = Filter.where({"kind": "object", "label": label})
        return list(dict.fromkeys(record.image_id for record in self.records(flt)))

    def labels(self, kind: str | None = None) -> dict[str, int]:
        """Label -> record count, most frequent first."""
        counts: dict[str, int] = {}
        for record in self.records(Filter.where({"kind": kind}) if kind else None):
            if record.label is not None:
                counts[record.label] = counts.get(record.label, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    def info(self, failure_limit: int = 20) -> CollectionInfo:
        index = self.index()
        return CollectionInfo(
            root=str(self.root),
            model=index.model,
            dim=index.dim,
            runtime=index.entry.runtime,
            precision=index.entry.precision,
            precision_note=index.entry.precision_note,
            store=self._manifest.store,
            images=self.count(Filter.where({"kind": "image"})),
            objects=self.count(Filter.where({"kind": "object"})),
            failures=self.failures.count(),
            failed_files=self.failures.list(failure_limit),
            indexes=self.index_infos(),
            calibration=index.entry.calibration,
        )

    def index_infos(self) -> list[IndexInfo]:
        """Every index by name: model, family, size and state (:attr:`default_index` names
        the active one)."""
        return [
            IndexInfo(
                name,
                i.entry.key,
                i.entry.family,
                i.dim,
                i.entry.runtime,
                i.entry.precision,
                i.store.count(),
                i.entry.state,
                i.entry.calibration,
            )
            for name, i in sorted(self.indexes.items())
        ]

    def remove(self, image_ids: list[str]) -> int:
        """Delete images and their objects from every index, with their judgements;
        returns how many images."""
        with self.writing():
            existing = self.get_many(image_ids)
            if existing:
                flt = Filter.where({"image_id": list(existing)})
                gone = list(dict.fromkeys([*existing, *(r.id for r in self.records(flt))]))
                for index in self.indexes.values():
                    index.store.delete_where(flt)
                if self.layout.feedback.exists():
                    self.feedback.forget(gone)
        return len(existing)

    def close(self) -> None:
        self.closed = True
        self.failures.close()
        if self._feedback is not None:
            self._feedback.close()


def _version(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (0, 0)
    return (stat.st_mtime_ns, stat.st_ino)


def exists(root: Path) -> bool:
    return Layout(root).exists()


def open_collection(
    root: Path | str,
    options: EmbedderOptions | None = None,
    embedder: Embedder | None = None,
    create: bool = False,
    crop_margin: float | None = None,
    store: str = "",
) -> Collection:
    """Open the collection at ``root`` (creating it with ``create``).

    The model is the collection's own unless ``options``/``embedder`` name one;
    naming another model than the default index's raises :class:`WrongModelError`.
    ``store`` (for a new collection) keeps its vectors elsewhere than the embedded
    default, e.g. ``milvus://HOST:PORT``; the directory keeps the manifest and logs.
    """
    layout = Layout(Path(root).expanduser())
    target = ""
    if layout.exists():
        manifest = read_manifest(layout.manifest)
        target = _target_index(manifest, options, embedder)
        wanted: EmbedderSource = embedder or _options_for(manifest.indexes[target], options)
    elif create:
        loaded = embedder or load_embedder(options or EmbedderOptions())
        entry = IndexEntry.for_embedder(loaded, family_name(options or EmbedderOptions()))
        manifest = Manifest.new(entry, crop_margin=crop_margin, store=store)
        layout.root.mkdir(parents=True, exist_ok=True)
        wanted = loaded
    else:
        raise CollectionNotFoundError(
            f"no pixseek collection at {layout.root} (index something first)"
        )
    if store and store != manifest.store:
        raise InvalidInputError(
            f"this collection keeps its vectors in {manifest.store!r}, not {store!r}"
        )
    location = str(layout.embedded_store) if manifest.store == "lance" else manifest.store

    def opener(name: str, entry: IndexEntry, source: EmbedderSource) -> Index:
        table = manifest.table_prefix + entry.table
        return Index(name, entry, open_store(location, table, entry.dim), source)

    target = target or manifest.default_index
    indexes = {}
    for name, entry in manifest.indexes.items():
        source = wanted if name == target else _options_for(entry, None)
        indexes[name] = opener(name, entry, source)
    if not layout.exists():  # written once its store opened: a failed start leaves no husk
        write_manifest(layout.manifest, manifest)
    collection = Collection(layout, manifest, indexes, FailureLog(layout.failures), opener)
    if embedder is not None or (options is not None and options.model):
        collection.indexes[target].embedder  # noqa: B018 - validate the model now
    return collection


def _target_index(
    manifest: Manifest, options: EmbedderOptions | None, embedder: Embedder | None
) -> str:
    """The index that the given model (or embedder) belongs to; the default one otherwise.
    A model of no index is left to the default, whose check refuses it clearly."""
    wanted = embedder.name if embedder is not None else ""
    if not wanted and options is not None and options.model:
        from pixseek.models.split import split_name

        model = canonical_model_name(options.model)
        text = canonical_model_name(options.text_model) if options.text_model else ""
        wanted = split_name(model, text)
    for name, entry in manifest.indexes.items():
        if wanted and wanted in (entry.key, entry.model):
            return name
    return manifest.default_index


def _options_for(entry: IndexEntry, options: EmbedderOptions | None) -> EmbedderSource:
    """Unless told otherwise, query with the model, runtime and precision used to index;
    another runtime, asked for, picks its own precision unless that is given too (the
    stored one may be one it does not run: int8 is ONNX's)."""
    chosen = options or EmbedderOptions()
    if not chosen.model or canonical_model_name(chosen.model) == entry.model:
        runtime = entry.runtime if chosen.runtime == "auto" else chosen.runtime
        stored = entry.precision if runtime == entry.runtime else "auto"
        chosen = replace(
            chosen,
            model=entry.model,
            family=entry.family if chosen.family == "auto" else chosen.family,
            text_model=chosen.text_model or entry.text_model,
            runtime=runtime,
            precision=stored if chosen.precision == "auto" else chosen.precision,
        )
    return lambda: load_embedder(chosen)
