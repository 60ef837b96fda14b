"""Distributed ingest on Ray: the local stages, run by a Ray Data pipeline.

The driver lists the source. A pool of actors, each loading the models once (with one
GPU each when the cluster has GPUs), reads, decodes, crops, preprocesses and embeds with
the model of every target index; the driver writes each embedded batch with the same
:func:`write_prepared` as every other writer, under the collection's write lock. The
stages are the local run's, so the records and vectors are the same.
``address`` joins a running cluster (``ray://HOST:10001`` or ``auto``); without it a
local Ray instance is started for the run and stopped after it.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pixseek.collection.collection import Collection
from pixseek.collection.index import Index
from pixseek.collection.manifest import IndexEntry
from pixseek.core.optional import require_module
from pixseek.ingest.options import DEFAULT_INGEST, IngestOptions, IngestReport, NoProgress, Progress
from pixseek.ingest.runners.local import account_written
from pixseek.ingest.stages import EmbedStep, Failed, ImageState, Prepared, Preparer, Skipped
from pixseek.ingest.tasks import Source
from pixseek.ingest.write import image_state, persist, target_indexes, write_prepared
from pixseek.models.options import EmbedderOptions


def embedder_options(entry: IndexEntry, batch_size: int) -> EmbedderOptions:
    """How a worker loads the index's model: the same family, model, runtime, precision."""
    return EmbedderOptions(
        model=entry.model,
        family=entry.family,
        runtime=entry.runtime,
        precision=entry.precision,
        text_model=entry.text_model,
        batch_size=batch_size,
    )


def vector_column(position: int) -> str:
    """The column of the ``position``-th target index's vectors (index names are free text)."""
    return f"vectors_{position}"


class EmbedStage:
    """A Ray actor: prepares tasks and embeds them with its own copy of every target model
    (``models``: index name → how to load its model, in target order)."""

    def __init__(
        self,
        models: dict[str, EmbedderOptions],
        state: ImageState,
        crop_margin: float,
        ingest: IngestOptions,
        regions: tuple[float, ...],
    ) -> None:
        from pixseek.models.registry import load_embedder

        embedders = {name: load_embedder(options) for name, options in models.items()}
        decode = ingest.decode_options(embedders.values())
        self.names = list(models)
        self.preparer = Preparer(embedders, state, crop_margin, decode, regions)
        self.embed = EmbedStep(embedders)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        outcomes = [self.preparer(task) for task in batch["task"]]
        prepared = [o for o in outcomes if isinstance(o, Prepared)]
        columns: dict[str, Any] = {"outcome": outcomes}
        embedded = self.embed(prepared) if prepared else {}
        for position, name in enumerate(self.names):
            rows: list[Any] = [None] * len(outcomes)
            start = 0
            for row, outcome in enumerate(outcomes):
                if isinstance(outcome, Prepared):
                    rows[row] = np.asarray(embedded[name][start : start + outcome.size], np.float32)
                    start += outcome.size
            columns[vector_column(position)] = rows
        for outcome in prepared:
            outcome.inputs = {}  # the model inputs stay on the worker
        return columns


def _ray() -> Any:
    return require_module("ray", "ray", "distributed ingest (--engine ray)")


def _start(address: str | None) -> bool:
    """Connect to (or start) Ray; True when this run started it and must stop it."""
    ray = _ray()
    require_module("ray.data", "ray", "distributed ingest (--engine ray)")

    if ray.is_initialized():
        return False
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    ray.init(
        address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR
    )
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    return True


class RayRunner:
    def __init__(
        self,
        collection: Collection,
        options: IngestOptions = DEFAULT_INGEST,
        progress: Progress | None = None,
        address: str | None = None,
        actors: int = 1,
    ) -> None:
        self.collection = collection
        self.options = options
        self.progress = progress or NoProgress()
        self.address = address
        self.actors = max(1, actors)

    def run(self, source: Source) -> IngestReport:
        ray = _ray()

        started = _start(self.address)
        try:
            with self.collection.writing():
                return self._run(source)
        finally:
            if started:
                ray.shutdown()

    def _run(self, source: Source) -> IngestReport:
        ray = _ray()

        collection, report = self.collection, IngestReport()
        indexes = target_indexes(collection, self.options.index)
        tasks = list(source.tasks())
        self.progress.start(len(tasks))
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        models = {i.name: embedder_options(i.entry, self.options.batch_size) for i in indexes}
        stage_args = (
            models,
            image_state(indexes),
            collection.crop_margin,
            self.options,
            collection.regions,
        )
        dataset = ray.data.from_items([{"task": task} for task in tasks]).map_batches(
            EmbedStage,
            fn_constructor_args=stage_args,
            compute=ray.data.ActorPoolStrategy(size=self.actors),
            batch_size=self.options.batch_size,
            num_gpus=gpus,
        )
        batch: list[Prepared] = []
        vectors: list[list[np.ndarray]] = []
        for row in dataset.iter_rows():
            outcome = row["outcome"]
            report.seen += 1
            if isinstance(outcome, Skipped):
                report.skipped += 1
            elif isinstance(outcome, Failed):
                report.add_failures([outcome.failure])
                collection.failures.record([outcome.failure])
            else:
                batch.append(outcome)
                vectors.append([row[vector_column(p)] for p in range(len(indexes))])
                if len(batch) >= self.options.batch_size:
                    self._flush(indexes, batch, vectors, report)
                    batch, vectors = [], []
            self.progress.advance(report)
        self._flush(indexes, batch, vectors, report)
        persist(indexes)
        self.progress.finish(report)
        return report

    def _flush(
        self,
        indexes: list[Index],
        batch: list[Prepared],
        vectors: list[list[np.ndarray]],
        report: IngestReport,
    ) -> None:
        if not batch:
            return
        by_index = {
            index.name: np.concatenate([np.asarray(row[p], np.float32) for row in vectors])
            for p, index in enumerate(indexes)
        }
        write_prepared(indexes, batch, by_index)
        account_written(self.collection, batch, report)
