"""Training, reindexing, comparing and making the views copy detection compares, as server
jobs: each has an id, a state, a progress
and a result, kept as a JSON file under the server's root, so a job outlives the server.

One worker runs the jobs in order. A job that was queued or running when the server
stopped runs again at the next start (a reindex resumes where it stopped; training starts
over). Models trained here go to ``ROOT/.pixseek-models/JOB_ID``; a reindex job names
one as ``job:JOB_ID``.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from pixseek.collection.atomic import write_atomic
from pixseek.collection.collection import Collection
from pixseek.collection.workspace import Workspace
from pixseek.core.errors import InvalidInputError, NotFoundError, PixseekError
from pixseek.ingest.options import IngestReport
from pixseek.jobs.calibrate import calibrate_missing
from pixseek.jobs.compare import compare
from pixseek.jobs.copy_views import refresh_views
from pixseek.jobs.false_alarms import keep_levels
from pixseek.jobs.reindex import reindex
from pixseek.models.registry import family_name, load_embedder
from pixseek.training import TrainOptions, pairs_from_labels, train
from pixseek.training.copy import images_for_copy, train_copy
from pixseek.training.data import part_of
from pixseek.training.feedback import pairs_from_feedback
from pixseek.training.loop import EpochStats

JOBS_DIR = ".pixseek-jobs"
MODELS_DIR = ".pixseek-models"
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    kind: str
    collection: str
    state: str = QUEUED
    progress: float = 0.0
    message: str = ""
    result: dict[str, Any] | None = None
    error: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _TrainProgress:
    def __init__(self, runner: JobRunner, job_id: str, epochs: int) -> None:
        self.runner, self.job_id, self.epochs = runner, job_id, epochs

    def step(self, epoch: int, loss: float) -> None:
        pass

    def epoch(self, stats: EpochStats) -> None:
        self.runner.update(
            self.job_id, progress=stats.epoch / self.epochs, message=f"epoch {stats.epoch}"
        )


class _IngestProgress:
    def __init__(self, runner: JobRunner, job_id: str) -> None:
        self.runner, self.job_id, self.total = runner, job_id, 0

    def start(self, total: int | None) -> None:
        self.total = total or 0

    def advance(self, report: IngestReport) -> None:
        done = report.indexed + report.skipped + report.failed
        share = min(1.0, done / self.total) if self.total else 0.0
        self.runner.update(self.job_id, progress=share, message=f"{done} images")

    def finish(self, report: IngestReport) -> None:
        self.advance(report)


class JobRunner:
    def __init__(self, root: Path, workspace: Workspace) -> None:
        self.folder = root / JOBS_DIR
        self.models = root / MODELS_DIR
        self.workspace = workspace
        self._lock = threading.Lock()
        self._queue: queue.Queue[str] = queue.Queue()
        self._jobs: dict[str, Job] = {}
        for path in sorted(self.folder.glob("*.json"), key=lambda p: p.stat().st_mtime):
            try:
                job = Job(**json.loads(path.read_text()))
            except (OSError, ValueError, TypeError) as exc:
                log.warning("skipping unreadable job file %s: %s", path, exc)
                continue
            if job.state in (QUEUED, RUNNING):  # the server stopped before it finished
                job = replace(job, state=QUEUED, message="queued again after a restart")
                self._queue.put(job.id)
            self._jobs[job.id] = job
        threading.Thread(target=self._work, name="pixseek-jobs", daemon=True).start()

    def submit(self, collection: str, kind: str, params: dict[str, Any]) -> Job:
        self.workspace.get(collection)  # 404 now rather than a failed job later
        job = Job(uuid.uuid4().hex[:12], kind, collection, params=params)
        with self._lock:
            self._jobs[job.id] = job
            self._save(job)
        self._queue.put(job.id)
        return job

    def submit_once(self, collection: str, kind: str, params: dict[str, Any]) -> Job:
        """A job of ``kind`` on ``collection``, unless one with the same parameters is
        already queued: it will see everything done until it starts."""
        with self._lock:
            for job in self._jobs.values():
                if (job.collection, job.kind, job.state, job.params) == (
                    collection,
                    kind,
                    QUEUED,
                    params,
                ):
                    return job
        return self.submit(collection, kind, params)

    def get(self, job_id: str) -> Job:
        with self._lock:
            if job_id not in self._jobs:
                raise NotFoundError(f"no job with id {job_id!r}")
            return self._jobs[job_id]

    def list(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def update(self, job_id: str, **changes: Any) -> Job:
        with self._lock:
            job = self._jobs[job_id] = replace(self._jobs[job_id], **changes)
            self._save(job)
            return job

    def _save(self, job: Job) -> None:
        write_atomic(self.folder / f"{job.id}.json", json.dumps(job.to_dict()).encode())

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            job = self.update(job_id, state=RUNNING, progress=0.0, error="")
            try:
                result = self._run(job)
            except PixseekError as exc:
                self.update(job_id, state=FAILED, error=str(exc))
            except Exception as exc:  # a job's failure must not stop the worker
                log.exception("job %s failed", job_id)
                self.update(job_id, state=FAILED, error=f"internal error: {exc!r}")
            else:
                self.update(job_id, state=DONE, progress=1.0, message="", result=result)

    def _run(self, job: Job) -> dict[str, Any]:
        started = time.monotonic()
        with self.workspace.using(job.collection) as collection:
            params = job.params
            if job.kind == "train" and params.get("mode") == "copy":
                result: dict[str, Any] = self._train_copy(job, collection)
            elif job.kind == "train":
                result = self._train(job, collection)
            elif job.kind == "reindex":
                chosen = replace(self.workspace.defaults, model=self.model_named(params["model"]))
                embedder = load_embedder(chosen)
                done = reindex(
                    collection,
                    embedder,
                    activate=bool(params.get("activate")),
                    progress=_IngestProgress(self, job.id),
                    family=family_name(chosen),
                )
                calibrated = calibrate_missing(collection)  # as `pixseek reindex` does
                result = {
                    "index": done.index,
                    "activated": done.activated,
                    "indexed": done.ingest.indexed,
                    "failed": done.ingest.failed,
                    "calibrated": [name for name, _ in calibrated],
                }
            elif job.kind == "views":
                result = self._views(job, collection)
            elif job.kind == "compare":
                labels = bool(params.get("labels"))
                held_out = (
                    part_of(collection, pairs_from_labels(collection), True) if labels else []
                )
                result = compare(
                    collection,
                    params.get("index", ""),
                    held_out,
                    zero_shot=labels,
                    activate_if_better=bool(params.get("activate_if_better")),
                ).to_dict()
            else:
                raise InvalidInputError(f"unknown job kind {job.kind!r}")
        return {**result, "seconds": round(time.monotonic() - started, 3)}

    def _views(self, job: Job, collection: Collection) -> dict[str, Any]:
        """The views duplicates and match compare, made for every index and kept: what a
        GET of duplicates would otherwise make inside the request."""

        def progress(done: int, total: int) -> None:
            self.update(job.id, progress=done / max(1, total), message=f"{done}/{total} images")

        # an upload's job (make: false) keeps up to date only the indexes that keep views
        made = refresh_views(collection, make=job.params.get("make", True), progress=progress)
        keep_levels(collection)  # match's, with the views: not measured inside a query
        return {
            "indexes": {
                name: {
                    "images": seen.images,
                    "embedded": seen.embedded,
                    "unreadable": seen.unreadable,
                }
                for name, seen in made
            }
        }

    def _options(self, params: dict[str, Any], val_fraction: float) -> TrainOptions:
        return TrainOptions(
            mode=params.get("mode", "full"),
            epochs=params.get("epochs", 10),
            batch_size=params.get("batch_size", 64),
            learning_rate=params.get("lr", 5e-4),
            val_fraction=val_fraction,
            device=params.get("device", "auto"),
        )

    def _train(self, job: Job, collection: Collection) -> dict[str, Any]:
        params = job.params
        labelled = pairs_from_labels(collection) if params.get("labels") else []
        pairs = part_of(collection, labelled, held_out=False)  # not the held-out images
        negatives = None
        if params.get("from_feedback", True):
            judged = pairs_from_feedback(collection)
            pairs, negatives = [*pairs, *judged.positives], judged.negatives
        alone = negatives is not None and not params.get("labels")
        options = self._options(params, 0.0 if alone else 0.1)
        out = self.models / job.id
        progress = _TrainProgress(self, job.id, options.epochs)
        report = train(collection.model, pairs, out, options, progress, negatives=negatives)
        return {
            "model": str(out),
            "best_epoch": report.best_epoch,
            "train_pairs": report.train_pairs,
            "hard_negatives": len(negatives or ()),
        }

    def _train_copy(self, job: Job, collection: Collection) -> dict[str, Any]:
        """``mode: copy``: the image tower on edited copies of the collection's images."""
        options = self._options(job.params, 0.1)
        out = self.models / job.id
        progress = _TrainProgress(self, job.id, options.epochs)
        report = train_copy(collection.model, images_for_copy(collection), out, options, progress)
        return {
            "model": str(out),
            "best_epoch": report.best_epoch,
            "train_images": report.train_pairs,
            "copy_top_1": report.best_score,  # of the saved epoch, on held-out images
        }

    def model_named(self, model: str) -> str:
        """A model named by the request, or ``job:ID``: the model a train job made."""
        if not model.startswith("job:"):
            return model
        trained = self.get(model[4:])
        if trained.kind != "train" or trained.state != DONE or trained.result is None:
            raise InvalidInputError(f"job {trained.id} is not a finished train job")
        return str(trained.result["model"])
