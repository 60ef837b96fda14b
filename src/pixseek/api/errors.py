"""Library errors to HTTP statuses, in one place: bad input is a 4xx, never a 500."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from pixseek.core.errors import (
    CollectionBusyError,
    CollectionExistsError,
    InvalidInputError,
    MissingDependencyError,
    NotFoundError,
    PixseekError,
    UnknownBackendError,
    WrongModelError,
)

STATUS: list[tuple[type[Exception], int]] = [
    (NotFoundError, 404),
    (CollectionExistsError, 409),
    (CollectionBusyError, 409),
    (WrongModelError, 409),
    (InvalidInputError, 422),
    (UnknownBackendError, 422),  # a model family, runtime or store the client named
    (MissingDependencyError, 501),  # a feature whose extra this server lacks
    (PixseekError, 400),
]


def status_of(exc: Exception) -> int:
    return next(code for kind, code in STATUS if isinstance(exc, kind))


def install(app: FastAPI) -> None:
    @app.exception_handler(PixseekError)
    async def library_error(request: Request, exc: PixseekError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # the offending input is left out: it may be a NaN or infinity, which JSON cannot carry
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": details}, status_code=422)
