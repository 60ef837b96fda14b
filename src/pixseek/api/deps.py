"""Request dependencies: the workspace, collections in use, API-key checks (roles and
collection scopes) and the decode slots."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pixseek.api.keys import KeyStore, Principal, Role
from pixseek.api.settings import ServeSettings
from pixseek.collection.collection import Collection
from pixseek.collection.workspace import Workspace
from pixseek.core.errors import InvalidInputError

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


# The role each route needs, by method and route path. Reads need ``search``; the POSTs
# listed here only read (or store a judgement), image uploads and deletes need ``write``,
# and anything else (collections, training and reindexing jobs, exports) needs ``admin``.
SEARCH_POSTS = frozenset(
    f"/collections/{{name}}/{tail}"
    for tail in (
        "search",
        "match",
        "match/batch",
        "classify",
        "slice",
        "feedback",
        "uniqueness",
        "blindspots",
    )
)
WRITES = frozenset(
    {
        ("POST", "/collections/{name}/images"),
        ("DELETE", "/collections/{name}/images/{image_id}"),
    }
)
ADMIN_READS = frozenset({"/collections/{name}/feedback", "/jobs", "/jobs/{job_id}"})


def required_role(method: str, route: str) -> Role:
    if method in ("GET", "HEAD"):
        return "admin" if route in ADMIN_READS else "search"
    if method == "POST" and route in SEARCH_POSTS:
        return "search"
    return "write" if (method, route) in WRITES else "admin"


def key_store(request: Request) -> KeyStore:
    return request.app.state.keys  # type: ignore[no-any-return]


def principal(request: Request) -> Principal:
    """Who made the request (set by :func:`authorize`)."""
    return request.state.principal  # type: ignore[no-any-return]


def _authenticate(request: Request, given: str | None) -> Principal:
    key = settings(request).api_key
    store = key_store(request)
    if key is None and not store.active():
        return Principal("local")  # no key configured: the host checks guard the server
    if given:
        if key is not None and secrets.compare_digest(given.encode(), key.encode()):
            return Principal("api-key")
        found = store.verify(given)
        if found is not None:
            return found
    raise HTTPException(401, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"})


def authorize(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> None:
    """With API keys configured, every API route needs ``Authorization: Bearer KEY`` of a
    key whose role and collections allow it (401 without a valid key, 403 outside them)."""
    route = getattr(request.scope.get("route"), "path", request.url.path)
    needed = required_role(request.method, route)
    request.state.write = needed != "search"  # searches and feedback are not in the write log
    who = _authenticate(request, credentials.credentials if credentials else None)
    request.state.key_id = who.key_id
    request.state.principal = who
    if not who.may(needed):
        raise HTTPException(403, f"this key's role ({who.role}) cannot do this; it needs {needed}")
    name = request.path_params.get("name")
    if name is not None and not who.covers(name):
        raise HTTPException(403, f"this key does not cover collection {name!r}")


def known_query(request: Request) -> None:
    """A query parameter the route does not declare is a 422, not ignored: a misspelt
    option (``?treshold=0.9``) would answer another question than the one asked. What a
    route declares is read from the app's published OpenAPI schema, once."""
    given = set(request.query_params)
    if not given:
        return
    route = getattr(request.scope.get("route"), "path", None)
    if route is None:
        return
    allowed = _declared_queries(request.app).get((request.method.lower(), route), frozenset())
    if unknown := sorted(given - allowed):
        takes = ", ".join(sorted(allowed)) or "none"
        raise InvalidInputError(
            f"unknown query parameter {', '.join(map(repr, unknown))}; this route takes: {takes}"
        )


def _declared_queries(app: Any) -> dict[tuple[str, str], frozenset[str]]:
    """(method, path template) -> the query parameters the route declares."""
    declared: dict[tuple[str, str], frozenset[str]] | None = getattr(
        app.state, "declared_queries", None
    )
    if declared is None:
        declared = {
            (method, path): frozenset(
                p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"
            )
            for path, operations in app.openapi()["paths"].items()
            for method, operation in operations.items()
        }
        app.state.declared_queries = declared
    return declared
