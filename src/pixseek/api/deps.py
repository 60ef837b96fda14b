"""Request dependencies: the workspace, collections in use, API-key checks and the
decode slots."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
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


def collection(request: Request, name: str) -> Iterator[Collection]:
    """The named collection, held for the whole request: a deletion waits for it."""
    with workspace(request).using(name) as found:
        yield found


@contextmanager
def decode_slot(request: Request, needed: bool = True) -> Iterator[None]:
    """One of the ``max_concurrent_uploads`` slots every decode of a client's image
    takes (uploads, image queries, match, classify), so their memory stays bounded."""
    if not needed:
        yield
        return
    with request.app.state.decode_slots:
        yield


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
