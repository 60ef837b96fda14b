"""Streaming local ingest: source → prepare (thread pool) → batch → embed → write,
into every index of the collection at once (or the one a reindex names).

Memory stays bounded: tasks stream from the source, at most ``workers * 4``
images are being prepared, and only model-sized inputs wait for a batch.
Each batch is one atomic store write, so an interrupted run loses at most the
batch in flight and a re-run indexes exactly what is missing. The whole run
holds the collection's write lock, so two runs never index the same files at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from pixseek.collection.collection import Collection
from pixseek.collection.failures import Failure
from pixseek.core.filters import Filter
from pixseek.core.paths import local_path
from pixseek.ingest.options import DEFAULT_INGEST, IngestOptions, IngestReport, NoProgress, Progress
from pixseek.ingest.stages import Failed, Prepared, Preparer, Skipped
from pixseek.ingest.tasks import Source
from pixseek.ingest.write import embedders_of, image_state, persist, target_indexes, write_prepared

T = TypeVar("T")
R = TypeVar("R")


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


class LocalRunner:
    """Runs a source through the stages into the collection's indexes (every one, or the
    one ``options.index`` names), on this machine."""

    def __init__(
        self,
        collection: Collection,
        options: IngestOptions = DEFAULT_INGEST,
        progress: Progress | None = None,
    ) -> None:
        self.collection = collection
        self.options = options
        self.progress = progress or NoProgress()

    def run(self, source: Source) -> IngestReport:
        with self.collection.writing():
            return self._run(source)

    def _run(self, source: Source) -> IngestReport:
        collection, report = self.collection, IngestReport()
        indexes = target_indexes(collection, self.options.index)
        embedders = embedders_of(indexes)
        decode = self.options.decode_options(embedders.values())
        preparer = Preparer(
            embedders, image_state(indexes), collection.crop_margin, decode, collection.regions
        )
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
                pending_inputs += outcome.size
                if pending_inputs >= self.options.batch_size:
                    write_prepared(indexes, batch)
                    self._account(batch, report)
                    batch, pending_inputs = [], 0
            self.progress.advance(report)
        write_prepared(indexes, batch)
        self._account(batch, report)
        self._report_unreadable_folders(source, report)
        roots = getattr(source, "roots", None)
        if self.options.sync and roots:
            keep = [Path(u.path) for u in getattr(source, "unreadable", ())]
            report.removed = remove_missing(collection, roots, seen, keep)
        persist(indexes)
        self.progress.finish(report)
        return report

    def _report_unreadable_folders(self, source: Source, report: IngestReport) -> None:
        failures = [
            Failure(str(u.path), f"cannot list folder: {u.error}")
            for u in getattr(source, "unreadable", ())
        ]
        report.add_failures(failures)
        self.collection.failures.record(failures)

    def _account(self, batch: list[Prepared], report: IngestReport) -> None:
        account_written(self.collection, batch, report)
        self.progress.advance(report)


def account_written(collection: Collection, batch: list[Prepared], report: IngestReport) -> None:
    """After a batch is written: its files leave the failure log, its objects' failures
    enter it, and the report counts them (every runner does this the same way)."""
    failures = collection.failures
    failures.clear(p.image.path for p in batch)
    object_failures = [f for p in batch for f in p.failures]
    failures.record(object_failures)
    report.add_failures(object_failures)
    report.indexed += len(batch)
    report.objects += sum(len(p.objects) for p in batch)


def remove_missing(
    collection: Collection, roots: Iterable[Path], seen: set[str], keep: Iterable[Path] = ()
) -> int:
    """Remove images under ``roots`` that this run did not see (their files are gone).

    Images under ``keep`` (folders that could not be listed) stay: an unreadable
    folder is not a deleted one.
    """
    folders = [Path(root).resolve() for root in roots]
    kept = [Path(folder).resolve() for folder in keep]
    gone = []
    for record in collection.records(Filter.where({"kind": "image"})):
        path = local_path(record.path)
        if record.path in seen or any(path.is_relative_to(k) for k in kept):
            continue
        if any(path.is_relative_to(f) for f in folders):
            gone.append(record)
    collection.failures.clear(record.path for record in gone)
    return collection.remove([record.id for record in gone])


def ingest(
    collection: Collection,
    source: Source,
    options: IngestOptions = DEFAULT_INGEST,
    progress: Progress | None = None,
) -> IngestReport:
    """Index ``source`` into one index (``options.index``) or, by default, into every index
    of the collection in one pass, so that each model's vectors cover the same images."""
    return LocalRunner(collection, options, progress).run(source)
