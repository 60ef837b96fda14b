"""``/collections/{name}/search``: every kind of query, with filters and feedback."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from pixseek.api.deps import collection, decode_slot, principal
from pixseek.api.keys import Principal
from pixseek.api.schemas.records import Hits, hit_out
from pixseek.api.schemas.search import SearchIn
from pixseek.collection.collection import Collection
from pixseek.search.engine import search
from pixseek.search.remember import remember

router = APIRouter(prefix="/collections/{name}", tags=["search"])


@router.post("/search", response_model=Hits)
def search_collection(
    request: Request,
    body: SearchIn,
    found: Annotated[Collection, Depends(collection)],
    who: Annotated[Principal, Depends(principal)],
) -> dict[str, Any]:
    """With ``remember``, the ``more_like``/``less_like`` marks are stored as judgements
    of the query (see ``/feedback``)."""
    terms, options = body.terms(), body.options()
    with decode_slot(request, body.has_images()):
        hits = search(found, terms, options)
        stored = (
            remember(found, terms, options.feedback, who.key_id, options.index)
            if body.remember
            else []
        )
    return {"hits": [hit_out(hit) for hit in hits], "remembered": len(stored)}
