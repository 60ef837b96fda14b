"""Request dependencies: the workspace, API-key checks and the upload slots."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pixseek.api.settings import ServeSettings
from pixseek.collection.collection import Collection
from pixseek.collection.workspace import Workspace

BEARER = HTTPBearer(auto_error=False)


def settings(request: Request) -> ServeSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def workspace(request: Request) -> Workspace:
    return request.app.state.workspace  # type: ignore[no-any-return]


def collection(request: Request, name: str) -> Collection:
    return workspace(request).get(name)


def authorize(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> None:
    """With an API key configured, every API route needs ``Authorization: Bearer KEY``."""
    key = settings(request).api_key
    if key is None:
        return
    given = credentials.credentials if credentials else ""
    if not secrets.compare_digest(given.encode(), key.encode()):
        raise HTTPException(401, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"})
