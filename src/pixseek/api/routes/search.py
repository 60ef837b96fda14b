"""``/collections/{name}/search``: every kind of query, with filters and feedback."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from pixseek.api.deps import collection, decode_slot
from pixseek.api.schemas.records import Hits, hit_out
from pixseek.api.schemas.search import SearchIn
from pixseek.collection.collection import Collection
from pixseek.search.engine import search

router = APIRouter(prefix="/collections/{name}", tags=["search"])


@router.post("/search", response_model=Hits)
def search_collection(
    request: Request, body: SearchIn, found: Annotated[Collection, Depends(collection)]
) -> dict[str, Any]:
    with decode_slot(request, body.has_images()):
        hits = search(found, body.terms(), body.options())
    return {"hits": [hit_out(hit) for hit in hits]}
