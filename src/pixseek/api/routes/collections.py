"""``/collections``: list, create, inspect and delete collections; list their indexes and
choose the active one."""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException

from pixseek.api.deps import collection, principal, settings, workspace
from pixseek.api.keys import Principal
from pixseek.api.schemas.collections import (
    ActiveIndexIn,
    CollectionCreate,
    CollectionSummary,
    Indexes,
    IndexOut,
    Labels,
)
from pixseek.api.settings import ServeSettings
from pixseek.collection.collection import Collection
from pixseek.collection.workspace import Workspace
from pixseek.core.errors import InvalidInputError

router = APIRouter(prefix="/collections", tags=["collections"])
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?")


def summary(name: str, collection: Collection) -> CollectionSummary:
    info = collection.info(failure_limit=0)
    return CollectionSummary(
        name=name,
        model=info.model,
        dim=info.dim,
        runtime=info.runtime,
        precision=info.precision,
        images=info.images,
        objects=info.objects,
        failures=info.failures,
    )


def allowed_model(model: str, config: ServeSettings) -> str:
    """A hub id, or a folder under the configured models root: never any server path."""
    if not model:
        return ""
    root = config.models_root
    if root is not None and HUB_ID.fullmatch(model) and ".." not in model:
        candidate = (root / model).resolve()
        if candidate.is_relative_to(root.resolve()) and candidate.is_dir():
            return str(candidate)
    if HUB_ID.fullmatch(model) and ".." not in model and not Path(model).exists():
        return model
    raise InvalidInputError(
        f"model {model!r} is not available: name a hub id, or a folder under the "
        "server's models root"
    )


@router.get("", response_model=list[CollectionSummary])
def list_collections(
    space: Annotated[Workspace, Depends(workspace)], who: Annotated[Principal, Depends(principal)]
) -> list[CollectionSummary]:
    """The collections the key covers."""
    return [summary(name, c) for name, c in space.open_all() if who.covers(name)]


@router.post("", response_model=CollectionSummary, status_code=201)
def create_collection(
    body: CollectionCreate,
    space: Annotated[Workspace, Depends(workspace)],
    config: Annotated[ServeSettings, Depends(settings)],
    who: Annotated[Principal, Depends(principal)],
) -> CollectionSummary:
    if not who.covers(body.name):
        raise HTTPException(403, f"this key does not cover collection {body.name!r}")
    model = allowed_model(body.model, config)
    return summary(body.name, space.create(body.name, model, body.family))


@router.get("/{name}", response_model=CollectionSummary)
def get_collection(
    name: str, found: Annotated[Collection, Depends(collection)]
) -> CollectionSummary:
    return summary(name, found)


@router.delete("/{name}", status_code=204)
def delete_collection(name: str, space: Annotated[Workspace, Depends(workspace)]) -> None:
    space.delete(name)


@router.get("/{name}/labels", response_model=Labels)
def labels(found: Annotated[Collection, Depends(collection)], kind: str | None = None) -> Labels:
    if kind not in (None, "image", "object"):
        raise InvalidInputError("kind is image or object")
    return Labels(labels=found.labels(kind))


def index_list(found: Collection) -> Indexes:
    active = found.default_index
    rows = [IndexOut(**asdict(i), active=i.name == active) for i in found.index_infos()]
    return Indexes(active=active, indexes=rows)


@router.get("/{name}/indexes", response_model=Indexes)
def indexes(found: Annotated[Collection, Depends(collection)]) -> Indexes:
    """The collection's indexes (one per model), the active one marked."""
    return index_list(found)


@router.put("/{name}/indexes/active", response_model=Indexes)
def activate_index(
    found: Annotated[Collection, Depends(collection)], body: ActiveIndexIn
) -> Indexes:
    """Switch searches to another (complete) index: one atomic manifest write."""
    found.activate(body.index)
    return index_list(found)
