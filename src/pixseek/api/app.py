"""The FastAPI application: middleware, error mapping and routers.

Routes are thin calls into the library; library errors map to status codes in
:mod:`pixseek.api.errors`, so bad input is always a 4xx and never a 500.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from pixseek import __version__
from pixseek.api import errors
from pixseek.api.audit import LogWrites, WriteLog
from pixseek.api.background import JobRunner
from pixseek.api.deps import authorize, known_query
from pixseek.api.keys import KeyStore
from pixseek.api.routes import background, collections, debug, feedback, images, jobs
from pixseek.api.routes import search as search_routes
from pixseek.api.settings import ServeSettings
from pixseek.collection.workspace import Workspace
from pixseek.models.options import EmbedderOptions

WEB = Path(__file__).resolve().parents[1] / "web"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class BodyTooLargeError(Exception):
    pass


class BodyLimit:
    """Refuse bodies over ``limit`` bytes while they stream in (a chunked body has no
    Content-Length to check up front)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            await _too_large(self.limit)(scope, receive, send)
            return
        received = 0
        started = exceeded = replaced = False

        async def limited() -> dict[str, Any]:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    exceeded = True
                    raise BodyTooLargeError
            return message

        async def tracked(message: MutableMapping[str, Any]) -> None:
            # whatever the app makes of a cut-off body (a parse error, a 400), the answer is 413
            nonlocal started, replaced
            if exceeded and not started:
                started = replaced = True
                await _too_large(self.limit)(scope, receive, send)
            if replaced:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracked)
        except BodyTooLargeError:
            if replaced:
                return
            if started:
                raise
            await _too_large(self.limit)(scope, receive, send)


class RequestGuard:
    """Without an API key, serve only requests addressed to an allowed host (DNS
    rebinding); never accept writes from another origin (cross-site requests)."""

    def __init__(self, app: Any, settings: ServeSettings, keys: KeyStore) -> None:
        self.app = app
        self.settings = settings
        self.keys = keys

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            refusal = None
            keyless = self.settings.api_key is None and not self.keys.active()
            if keyless and not _host_allowed(request, self.settings):
                refusal = JSONResponse({"detail": "unknown Host header"}, 421)
            elif request.method in WRITE_METHODS and not _same_origin(request):
                refusal = JSONResponse({"detail": "cross-origin writes are refused"}, 403)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"request body over the {limit}-byte limit"}, 413)


def _host_allowed(request: Request, settings: ServeSettings) -> bool:
    """Without an API key, only requests addressed to an allowed host name are served:
    a DNS-rebinding page cannot reach the API under its own name."""
    host = request.headers.get("host", "")
    name = urlsplit(f"//{host}").hostname or ""
    allowed = {h.strip("[]").lower() for h in settings.allowed_hosts} | {settings.host.lower()}
    return name.strip("[]").lower() in allowed


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:  # not a browser's cross-site request
        return True
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


def create_app(
    settings: ServeSettings | None = None, workspace: Workspace | None = None
) -> FastAPI:
    settings = settings or ServeSettings()
    space = workspace or Workspace(settings.root, EmbedderOptions.from_attrs(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # load models in the background, so the first search does not pay for it
        threading.Thread(target=space.warm, name="pixseek-warm", daemon=True).start()
        yield

    app = FastAPI(title="pixseek", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.workspace = space
    app.state.decode_slots = threading.BoundedSemaphore(settings.max_concurrent_uploads)
    app.state.keys = KeyStore(settings.root)
    app.state.jobs = JobRunner(settings.root, space)
    errors.install(app)

    @app.exception_handler(BodyTooLargeError)
    async def body_too_large(request: Request, exc: BodyTooLargeError) -> JSONResponse:
        return _too_large(settings.max_upload_bytes)

    app.add_middleware(RequestGuard, settings=settings, keys=app.state.keys)
    app.add_middleware(LogWrites, log=WriteLog(settings.root))
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes)

    @app.get("/health", response_model=None)
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    routers = (collections, images, search_routes, jobs, debug, feedback, background)
    for router in (module.router for module in routers):
        app.include_router(router, dependencies=[Depends(authorize), Depends(known_query)])

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(WEB / "index.html")

    app.mount("/static", StaticFiles(directory=WEB), name="static")
    return app
