"""``/collections/{name}/jobs`` and ``/jobs``: training, reindexing and comparing in the
background, with an id, a progress and a result that outlive the server."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request

from pixseek.api.background import JobRunner
from pixseek.api.deps import principal, settings
from pixseek.api.keys import Principal
from pixseek.api.routes.collections import allowed_model
from pixseek.api.schemas.background import JobIn, JobOut
from pixseek.core.errors import InvalidInputError

router = APIRouter(tags=["jobs"])
TRAIN = ("from_feedback", "labels", "mode", "epochs", "batch_size", "lr", "device")
PARAMS = {
    "train": TRAIN,
    "reindex": ("model", "activate"),
    "compare": ("index", "activate_if_better", "labels"),
    "views": (),
}


def runner(request: Request) -> JobRunner:
    return request.app.state.jobs  # type: ignore[no-any-return]


Runner = Annotated[JobRunner, Depends(runner)]
Who = Annotated[Principal, Depends(principal)]


@router.post("/collections/{name}/jobs", response_model=JobOut, status_code=202)
def start_job(request: Request, name: str, body: JobIn, jobs: Runner) -> dict[str, Any]:
    # a field this kind of job does not use is refused, not ignored ("epochs" on a views job)
    if stray := sorted(body.model_fields_set - {"kind", *PARAMS[body.kind]}):
        takes = ", ".join(PARAMS[body.kind]) or "nothing else"
        raise InvalidInputError(
            f"a {body.kind} job does not take {', '.join(stray)}; it takes: {takes}"
        )
    params = {key: getattr(body, key) for key in PARAMS[body.kind]}
    if body.kind == "train":
        params.update(_train_checks(body))
        if body.labels and "from_feedback" not in body.model_fields_set:
            # labels asked for: judgements only when asked too (`pixseek train --labels`)
            params["from_feedback"] = False
    if body.kind == "reindex" and body.model.startswith("job:"):
        jobs.model_named(body.model)  # a job that is not a finished train job: refused now
    elif body.kind == "reindex":
        params["model"] = allowed_model(body.model, settings(request)) or body.model
    return jobs.submit(name, body.kind, params).to_dict()


def _train_checks(body: JobIn) -> dict[str, Any]:
    """Refuse now what a train job would fail on: labels or judgements asked for with mode
    copy (which trains on images alone: judgements are off unless asked for), a device this
    server does not have. Returns the parameters to change."""
    changes: dict[str, Any] = {}
    if body.mode == "copy":
        from pixseek.training.copy import refuse_texts

        given = {
            "labels": body.labels,
            "from_feedback": body.from_feedback and "from_feedback" in body.model_fields_set,
        }
        refuse_texts([name for name, value in given.items() if value], "mode 'copy'")
        changes["from_feedback"] = False
    if body.device not in ("auto", "cpu"):
        from pixseek.training.loop import training_device

        training_device(body.device)
    return changes


@router.get("/jobs", response_model=list[JobOut])
def list_jobs(jobs: Runner, who: Who) -> list[dict[str, Any]]:
    return [job.to_dict() for job in jobs.list() if who.covers(job.collection)]


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: str, jobs: Runner, who: Who) -> dict[str, Any]:
    job = jobs.get(job_id)
    if not who.covers(job.collection):
        raise HTTPException(403, f"this key does not cover collection {job.collection!r}")
    return job.to_dict()
