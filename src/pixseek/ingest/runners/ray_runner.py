"""Distributed ingest on Ray: the local stages, run by a Ray Data pipeline.

The driver lists the source. A pool of actors, each loading the model once (with one
GPU each when the cluster has GPUs), reads, decodes, crops, preprocesses and embeds; the
driver writes each embedded batch with the same :class:`Writer`, under the collection's
write lock. The stages are the local run's, so the records and vectors are the same.
``address`` joins a running cluster (``ray://HOST:10001`` or ``auto``); without it a
local Ray instance is started for the run and stopped after it.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pixseek.collection.collection import Collection
from pixseek.collection.manifest import IndexEntry
from pixseek.ingest.options import DEFAULT_INGEST, IngestOptions, IngestReport, NoProgress, Progress
from pixseek.ingest.runners.local import account_written, image_state
from pixseek.ingest.stages import Failed, ImageState, Prepared, Preparer, Skipped, Writer
from pixseek.ingest.tasks import Source
from pixseek.models.options import EmbedderOptions


def embedder_options(entry: IndexEntry, batch_size: int) -> EmbedderOptions:
    """How a worker loads the index's model: the same model, runtime and precision."""
    return EmbedderOptions(
        model=entry.model,
        runtime=entry.runtime,
        precision=entry.precision,
        text_model=entry.text_model,
        batch_size=batch_size,
    )


class EmbedStage:
    """A Ray actor: prepares tasks and embeds them with its own copy of the model."""

    def __init__(
        self,
        options: EmbedderOptions,
        state: ImageState,
        crop_margin: float,
        ingest: IngestOptions,
        regions: tuple[float, ...],
    ) -> None:
        from pixseek.models.registry import load_embedder

        embedder = load_embedder(options)
        decode = ingest.decode_options(embedder)
        self.preparer = Preparer(embedder, state, crop_margin, decode, regions)
        self.writer = Writer(embedder, store=None)  # type: ignore[arg-type]  # embeds only

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        outcomes = [self.preparer(task) for task in batch["task"]]
        prepared = [o for o in outcomes if isinstance(o, Prepared)]
        vectors: list[Any] = [None] * len(outcomes)
        if prepared:
            embedded = self.writer.embed([i for p in prepared for i in p.inputs])
            start = 0
            for position, outcome in enumerate(outcomes):
                if isinstance(outcome, Prepared):
                    count = len(outcome.inputs)
                    vectors[position] = np.asarray(embedded[start : start + count], np.float32)
                    outcome.inputs = []  # the model inputs stay on the worker
                    start += count
        return {"outcome": outcomes, "vectors": vectors}


def _start(address: str | None) -> bool:
    """Connect to (or start) Ray; True when this run started it and must stop it."""
    import ray

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
        import ray

        started = _start(self.address)
        try:
            with self.collection.writing():
                return self._run(source)
        finally:
            if started:
                ray.shutdown()

    def _run(self, source: Source) -> IngestReport:
        import ray

        collection, report = self.collection, IngestReport()
        index = collection.index(self.options.index)
        tasks = list(source.tasks())
        self.progress.start(len(tasks))
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        stage_args = (
            embedder_options(index.entry, self.options.batch_size),
            image_state(index),
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
        writer = Writer(None, index.store)  # type: ignore[arg-type]  # vectors come embedded
        batch: list[Prepared] = []
        vectors: list[np.ndarray] = []
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
                vectors.append(np.asarray(row["vectors"], np.float32))
                if len(batch) >= self.options.batch_size:
                    self._flush(writer, batch, vectors, report)
                    batch, vectors = [], []
            self.progress.advance(report)
        self._flush(writer, batch, vectors, report)
        index.store.persist()
        self.progress.finish(report)
        return report

    def _flush(
        self, writer: Writer, batch: list[Prepared], vectors: list[np.ndarray], report: IngestReport
    ) -> None:
        if not batch:
            return
        writer.store_embedded(batch, np.concatenate(vectors))
        account_written(self.collection, batch, report)
