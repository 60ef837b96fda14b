"""The FastAPI application: routes are thin calls into the library.

Library errors map to status codes in one place (:data:`STATUS`), so bad input
is always a 4xx with a message and never a 500.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles

from pixseek import __version__
from pixseek.api import routes
from pixseek.api.settings import ServeSettings
from pixseek.errors import (
    CollectionExistsError,
    InvalidInputError,
    NotFoundError,
    PixseekError,
    WrongModelError,
)
from pixseek.models.registry import EmbedderOptions
from pixseek.workspace import Workspace

WEB = Path(__file__).resolve().parents[1] / "web"
STATUS: list[tuple[type[Exception], int]] = [
    (NotFoundError, 404),
    (CollectionExistsError, 409),
    (WrongModelError, 409),
    (InvalidInputError, 422),
    (PixseekError, 400),
]


BEARER = HTTPBearer(auto_error=False)


def authorize(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> None:
    """With an API key configured, every API route needs ``Authorization: Bearer KEY``."""
    key = request.app.state.settings.api_key
    if key is None:
        return
    given = credentials.credentials if credentials else ""
    if not secrets.compare_digest(given.encode(), key.encode()):
        raise HTTPException(401, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"})


def _status(exc: Exception) -> int:
    return next(code for kind, code in STATUS if isinstance(exc, kind))


def create_app(
    settings: ServeSettings | None = None, workspace: Workspace | None = None
) -> FastAPI:
    settings = settings or ServeSettings()
    defaults = EmbedderOptions(
        model=settings.model,
        runtime=settings.runtime,
        precision=settings.precision,
        device=settings.device,
    )
    space = workspace or Workspace(settings.root, defaults)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # load models in the background, so the first search does not pay for it
        threading.Thread(target=space.warm, name="pixseek-warm", daemon=True).start()
        yield

    app = FastAPI(title="pixseek", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.workspace = space

    @app.exception_handler(PixseekError)
    async def library_error(request: Request, exc: PixseekError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=_status(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # the offending input is left out: it may be a NaN or infinity, which JSON cannot carry
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": details}, status_code=422)

    @app.middleware("http")
    async def limit_upload_size(request: Request, call_next):  # type: ignore[no-untyped-def]
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.max_upload_bytes:
            limit = settings.max_upload_bytes
            return JSONResponse({"detail": f"request body over the {limit}-byte limit"}, 413)
        return await call_next(request)

    @app.get("/health", response_model=None)
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.include_router(routes.router, dependencies=[Depends(authorize)])

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(WEB / "index.html")

    app.mount("/static", StaticFiles(directory=WEB), name="static")
    return app
