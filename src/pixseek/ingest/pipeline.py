"""Streaming local ingest: source → prepare (thread pool) → batch → embed → write.

Memory stays bounded: tasks stream from the source, at most ``workers * 4``
images are being prepared, and only model-sized inputs wait for a batch.
Each batch is one atomic store write, so an interrupted run loses at most the
batch in flight and a re-run indexes exactly what is missing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol, TypeVar

from pixseek.collection import Collection
from pixseek.failures import Failure
from pixseek.imaging import DEFAULT_MAX_PIXELS, DecodeOptions, decode_options_for
from pixseek.ingest.sources import Source
from pixseek.ingest.stages import Failed, ImageState, Prepared, Preparer, Skipped, Writer
from pixseek.models.base import Embedder
from pixseek.store.filters import Filter

T = TypeVar("T")
R = TypeVar("R")
REPORTED_FAILURES = 100


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """``fast_decode``: JPEG draft decoding (see :func:`decode_options_for`);
    ``sync``: drop indexed images under the source's folders whose files are gone."""

    batch_size: int = 64
    workers: int = 2
    fast_decode: bool = True
    max_pixels: int = DEFAULT_MAX_PIXELS
    sync: bool = False

    def decode_options(self, embedder: Embedder) -> DecodeOptions:
        fast = decode_options_for(getattr(embedder, "input_size", None), self.fast_decode)
        return replace(fast, max_pixels=self.max_pixels)


@dataclass(slots=True)
class IngestReport:
    seen: int = 0
    indexed: int = 0
    skipped: int = 0
    failed: int = 0
    objects: int = 0
    removed: int = 0
    failures: list[Failure] = field(default_factory=list)

    def add_failures(self, failures: Iterable[Failure]) -> None:
        for failure in failures:
            self.failed += 1
            if len(self.failures) < REPORTED_FAILURES:
                self.failures.append(failure)


class Progress(Protocol):
    """Receives counts as work completes; the CLI draws a bar, libraries may ignore it."""

    def start(self, total: int | None) -> None: ...

    def advance(self, report: IngestReport) -> None: ...

    def finish(self, report: IngestReport) -> None: ...


class NoProgress:
    def start(self, total: int | None) -> None:
        pass

    def advance(self, report: IngestReport) -> None:
        pass

    def finish(self, report: IngestReport) -> None:
        pass


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``map`` on a thread pool, in input order, with a bounded number of items in flight."""
    if workers <= 1:
        yield from map(fn, items)
        return
    ahead = workers * 4
    with ThreadPoolExecutor(workers, thread_name_prefix="pixseek-prepare") as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def image_state(collection: Collection) -> dict[str, tuple[str, str]]:
    state: dict[str, tuple[str, str]] = {}
    for records, _ in collection.store.scan(Filter.where({"kind": "image"})):
        for record in records:
            state[record.id] = (record.content_hash, record.source_hash)
    return state


class Ingestor:
    """Runs a source through the stages into one collection."""

    def __init__(
        self,
        collection: Collection,
        options: IngestOptions = IngestOptions(),
        progress: Progress | None = None,
    ) -> None:
        self.collection = collection
        self.options = options
        self.progress = progress or NoProgress()

    def run(self, source: Source) -> IngestReport:
        collection, report = self.collection, IngestReport()
        state: ImageState = image_state(collection)
        decode = self.options.decode_options(collection.embedder)
        preparer = Preparer(collection.embedder, state, collection.manifest.crop_margin, decode)
        writer = Writer(collection.embedder, collection.store)
        self.progress.start(source.count())
        seen: set[str] = set()
        batch: list[Prepared] = []
        pending_inputs = 0
        for outcome in ordered_map(preparer, source.tasks(), self.options.workers):
            report.seen += 1
            if isinstance(outcome, Skipped):
                report.skipped += 1
                seen.add(outcome.path)
            elif isinstance(outcome, Failed):
                seen.add(outcome.failure.path)  # a file that now fails keeps its old record
                report.add_failures([outcome.failure])
                collection.failures.record([outcome.failure])
            else:
                seen.add(outcome.image.path)
                batch.append(outcome)
                pending_inputs += len(outcome.inputs)
                if pending_inputs >= self.options.batch_size:
                    self._flush(writer, batch, report)
                    batch, pending_inputs = [], 0
            self.progress.advance(report)
        self._flush(writer, batch, report)
        roots = getattr(source, "roots", None)
        if self.options.sync and roots:
            report.removed = remove_missing(collection, roots, seen)
        collection.store.persist()
        self.progress.finish(report)
        return report

    def _flush(self, writer: Writer, batch: list[Prepared], report: IngestReport) -> None:
        if not batch:
            return
        writer.write(batch)
        failures = self.collection.failures
        failures.clear(p.image.path for p in batch)
        object_failures = [f for p in batch for f in p.failures]
        failures.record(object_failures)
        report.add_failures(object_failures)
        report.indexed += len(batch)
        report.objects += sum(len(p.objects) for p in batch)
        self.progress.advance(report)


def remove_missing(collection: Collection, roots: Iterable[Path], seen: set[str]) -> int:
    """Remove images under ``roots`` that this run did not see (their files are gone)."""
    folders = [Path(root).resolve() for root in roots]
    gone = []
    for records, _ in collection.store.scan(Filter.where({"kind": "image"})):
        for record in records:
            path = Path(record.path)
            if record.path not in seen and any(path.is_relative_to(f) for f in folders):
                gone.append(record)
    collection.failures.clear(record.path for record in gone)
    return collection.remove([record.id for record in gone])


def ingest(
    collection: Collection,
    source: Source,
    options: IngestOptions = IngestOptions(),
    progress: Progress | None = None,
) -> IngestReport:
    return Ingestor(collection, options, progress).run(source)
