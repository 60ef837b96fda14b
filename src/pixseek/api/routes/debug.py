"""``/collections/{name}/slice``, ``/blindspots``, ``/label-errors``, ``/map`` and
``/uniqueness``: where a model or its data go wrong."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from pixseek.api.deps import collection, decode_slot
from pixseek.api.schemas.debug import (
    Blindspots,
    BlindspotsIn,
    LabelErrors,
    MapIn,
    MapPage,
    MapUpdate,
    SliceIn,
    SliceOut,
    UniquenessIn,
    UniquenessOut,
    VerdictIn,
    Verdicts,
)
from pixseek.collection.collection import Collection
from pixseek.core.filters import Filter
from pixseek.jobs.blindspots import KINDS, find_blindspots
from pixseek.jobs.embedding_map import MAX_PAGE, load_map, update_map
from pixseek.jobs.label_errors import find_label_errors, review
from pixseek.jobs.slices import slice_report
from pixseek.jobs.uniqueness import find_uniqueness
from pixseek.search.engine import search

router = APIRouter(prefix="/collections/{name}", tags=["debugging"])
Found = Annotated[Collection, Depends(collection)]


@router.post("/slice", response_model=SliceOut)
def slice_metrics(request: Request, found: Found, body: SliceIn) -> dict[str, Any]:
    ids = set(body.image_ids)
    if body.query is not None:
        options = body.query.options()
        with decode_slot(request, body.query.has_images()):
            hits = search(found, body.query.terms(), options)
        ids |= {hit.image_id for hit in hits}
    return slice_report(found, ids).to_dict()


@router.get("/blindspots", response_model=Blindspots)
def blindspots(
    found: Found,
    outcome: Annotated[str, Query(pattern="^(FN|FP)$")] = "FN",
    clusters: Annotated[int, Query(ge=1, le=50)] = 8,
    kind: Annotated[list[str] | None, Query(max_length=3)] = None,
    top: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    report = find_blindspots(found, outcome=outcome, clusters=clusters, kinds=kind or KINDS)
    return {**report.to_dict(), "blindspots": [s.to_dict() for s in report.blindspots[:top]]}


@router.post("/blindspots", response_model=Blindspots)
def selection_blindspots(found: Found, body: BlindspotsIn) -> dict[str, Any]:
    """Blind spots within a selection of images (the map's, a sample)."""
    report = find_blindspots(
        found,
        outcome=body.outcome,
        clusters=body.clusters,
        kinds=tuple(body.kind) or KINDS,
        images=body.image_ids,
    )
    return {**report.to_dict(), "blindspots": [s.to_dict() for s in report.blindspots[: body.top]]}


@router.get("/label-errors", response_model=LabelErrors)
def label_errors(
    found: Found,
    kind: Annotated[str, Query(pattern="^(auto|object|image)$")] = "auto",
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    top: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    return find_label_errors(found, kind=kind, k=k, top=top).to_dict()


@router.put("/label-errors/{record_id}", response_model=Verdicts)
def label_verdict(found: Found, record_id: str, body: VerdictIn) -> dict[str, Any]:
    return {"verdicts": review(found, record_id, body.verdict)}


@router.post("/map", response_model=MapUpdate)
def map_update(found: Found, body: MapIn) -> dict[str, Any]:
    return update_map(found, found.index(body.model), refit=body.refit).to_dict()


@router.get("/map", response_model=MapPage)
def map_page(
    found: Found,
    model: Annotated[str, Query(max_length=500)] = "",
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 10_000,
) -> dict[str, Any]:
    return load_map(found, found.index(model)).page_dict(offset, limit)


@router.post("/uniqueness", response_model=UniquenessOut)
def uniqueness(found: Found, body: UniquenessIn) -> dict[str, Any]:
    report = find_uniqueness(
        found,
        found.index(body.model),
        k=body.k,
        top=body.top,
        sample=body.sample,
        where=Filter.parse(body.where),
        kind=body.kind,
    )
    return report.to_dict()
