"""The HTTP client: one method per API route, library values in and out."""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from pixseek.core.errors import (
    CollectionBusyError,
    CollectionExistsError,
    InvalidInputError,
    MissingDependencyError,
    NotFoundError,
    PixseekError,
)
from pixseek.core.filters import Condition, Filter
from pixseek.core.optional import require_module
from pixseek.core.query import (
    QueryPart,
    RecordQuery,
    RegionQuery,
    SearchOptions,
    Term,
    TextQuery,
)
from pixseek.core.records import Hit, Record

if TYPE_CHECKING:
    import httpx

JobKind = Literal["train", "reindex", "compare", "views"]


class ClientError(PixseekError):
    """An answer the client has no more specific error for; ``status`` is its HTTP status."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class CollectionSummary:
    name: str
    model: str
    dim: int
    runtime: str
    precision: str
    images: int
    objects: int
    failures: int


@dataclass(frozen=True, slots=True)
class StoredJudgement:
    id: int
    query_kind: str
    query: str
    result_id: str
    value: int
    key_id: str
    at: float


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    kind: str
    collection: str
    state: str
    progress: float
    message: str = ""
    result: dict[str, Any] | None = None
    error: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")


def _record(values: Mapping[str, Any]) -> Record:
    box = values.get("box")
    return Record(
        id=values["id"],
        kind=values["kind"],
        image_id=values["image_id"],
        path=values["path"],
        width=values["width"],
        height=values["height"],
        box=tuple(box) if box is not None else None,  # type: ignore[arg-type]
        label=values.get("label"),
        source=values.get("source"),
        confidence=values.get("confidence"),
        metadata=values.get("metadata") or {},
    )


def _part(part: QueryPart) -> dict[str, Any]:
    if isinstance(part, TextQuery):
        return {"text": part.text}
    if isinstance(part, RecordQuery):
        return {"object_id": part.id}
    if isinstance(part, RegionQuery):
        return {"image_id": part.image_id, "box": list(part.box)}
    body: dict[str, Any] = {"image": base64.b64encode(part.data).decode()}
    if part.box is not None:
        body["box"] = list(part.box)
    return body


def _where(flt: Filter) -> dict[str, list[str]] | None:
    """The API's ``where``: each field one of its values; ``or`` and ``!=`` do not travel."""
    where: dict[str, list[str]] = {}
    for clause in flt.conditions:
        if not isinstance(clause, Condition) or clause.negate or clause.field in where:
            raise InvalidInputError(
                "the HTTP API filters on FIELD=VALUE[,VALUE...] conditions joined by 'and'"
            )
        where[clause.field] = list(clause.values)
    return where or None


def search_body(terms: Sequence[Term], options: SearchOptions) -> dict[str, Any]:
    """A search request's body for library query values."""
    body: dict[str, Any] = {
        "positives": [{**_part(t.part), "weight": t.weight} for t in terms if t.weight > 0],
        "negatives": [{**_part(t.part), "weight": -t.weight} for t in terms if t.weight < 0],
        "k": options.k,
        "kind": options.kind or "both",
        "where": _where(options.where),
        "min_score": options.min_score,
        "index": options.index,
    }
    feedback = options.feedback
    if feedback:
        body["more_like"] = list(feedback.positives)
        body["less_like"] = list(feedback.negatives)
        body["feedback_weights"] = {
            "alpha": feedback.alpha,
            "beta": feedback.beta,
            "gamma": feedback.gamma,
        }
    return body


class PixseekClient:
    """``PixseekClient("http://127.0.0.1:8000", api_key=...)``; a context manager."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        timeout: float = 120.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        httpx_module = require_module("httpx", "client", "the HTTP client")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http: httpx.Client = httpx_module.Client(
            base_url=url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> PixseekClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise _error(response.status_code, _detail(response))
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # collections
    def collections(self) -> list[CollectionSummary]:
        return [CollectionSummary(**c) for c in self._call("GET", "/collections")]

    def collection(self, name: str) -> CollectionSummary:
        return CollectionSummary(**self._call("GET", f"/collections/{name}"))

    def create_collection(
        self, name: str, model: str = "", family: str = "auto"
    ) -> CollectionSummary:
        body = {"name": name, "model": model, "family": family}
        return CollectionSummary(**self._call("POST", "/collections", json=body))

    def delete_collection(self, name: str) -> None:
        self._call("DELETE", f"/collections/{name}")

    # images and records
    def add_images(self, name: str, images: Sequence[bytes | Path]) -> list[str]:
        """Upload image files (bytes or paths); returns their ids in order."""
        files = [
            ("files", (p.name, p.read_bytes()) if isinstance(p, Path) else (f"{n}.img", p))
            for n, p in enumerate(images)
        ]
        return list(self._call("POST", f"/collections/{name}/images", files=files)["ids"])

    def remove_image(self, name: str, image_id: str) -> None:
        self._call("DELETE", f"/collections/{name}/images/{image_id}")

    def get(self, name: str, record_id: str) -> Record:
        return _record(self._call("GET", f"/collections/{name}/records/{record_id}"))

    # search and feedback
    def search(
        self,
        name: str,
        query: str | Term | Sequence[Term | str],
        options: SearchOptions | None = None,
        remember: bool = False,
    ) -> list[Hit]:
        """What :func:`pixseek.search.search` answers on the server's collection ``name``.

        With ``remember``, the options' feedback marks are stored as judgements."""
        options = options or SearchOptions()
        items = [query] if isinstance(query, str | Term) else list(query)
        terms = [Term(TextQuery(i)) if isinstance(i, str) else i for i in items]
        body = {**search_body(terms, options), "remember": remember}
        answer = self._call("POST", f"/collections/{name}/search", json=body)
        return [Hit(_record(hit), float(hit["score"])) for hit in answer["hits"]]

    def judge(
        self, name: str, query: str | QueryPart, result_id: str, value: Literal[1, -1]
    ) -> StoredJudgement:
        """Store one judgement: ``result_id`` was relevant (1) or not (-1) for ``query``."""
        part = TextQuery(query) if isinstance(query, str) else query
        body = {"judgements": [{"query": _part(part), "result_id": result_id, "value": value}]}
        stored = self._call("POST", f"/collections/{name}/feedback", json=body)
        return StoredJudgement(**stored["judgements"][0])

    def feedback(self, name: str) -> list[StoredJudgement]:
        """Every judgement stored with the collection (an admin key's call)."""
        rows = self._call("GET", f"/collections/{name}/feedback")["judgements"]
        return [StoredJudgement(**row) for row in rows]

    # background jobs: training, reindexing, comparing indexes
    def start_job(self, name: str, kind: JobKind, **params: Any) -> Job:
        body = {"kind": kind, **params}
        return _job(self._call("POST", f"/collections/{name}/jobs", json=body))

    def job(self, job_id: str) -> Job:
        return _job(self._call("GET", f"/jobs/{job_id}"))

    def jobs(self) -> list[Job]:
        return [_job(row) for row in self._call("GET", "/jobs")]

    def wait(self, job_id: str, timeout: float = 600.0, poll: float = 0.5) -> Job:
        """The job once it is done or failed; raises TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job.finished:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job.state} after {timeout} s")
            time.sleep(poll)


def _job(values: Mapping[str, Any]) -> Job:
    return Job(**values)


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    return detail if isinstance(detail, str) else str(detail)


def _error(status: int, detail: str) -> PixseekError:
    """The library's error for an answer's status, as the API's status table maps them."""
    if status == 404:
        return NotFoundError(detail)
    if status == 409:
        busy = "writ" in detail
        return CollectionBusyError(detail) if busy else CollectionExistsError(detail)
    if status == 422:
        return InvalidInputError(detail)
    if status == 501:
        return MissingDependencyError(detail)
    return ClientError(status, detail)
