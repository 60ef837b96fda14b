"""``/collections/{name}/feedback``: store judgements, and read them all back (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from pixseek.api.deps import collection, decode_slot, principal
from pixseek.api.keys import Principal
from pixseek.api.schemas.feedback import FeedbackIn, FeedbackOut
from pixseek.collection.collection import Collection
from pixseek.core.query import Feedback, Term
from pixseek.search.remember import remember

router = APIRouter(prefix="/collections/{name}", tags=["feedback"])
Found = Annotated[Collection, Depends(collection)]


@router.post("/feedback", response_model=FeedbackOut, status_code=201)
def add_feedback(
    request: Request,
    found: Found,
    body: FeedbackIn,
    who: Annotated[Principal, Depends(principal)],
) -> dict[str, Any]:
    stored = []
    for judgement in body.judgements:
        marks = (
            ((judgement.result_id,), ()) if judgement.value > 0 else ((), (judgement.result_id,))
        )
        with decode_slot(request, bool(judgement.query.image)):
            terms = [Term(judgement.query.part())]
            stored += remember(found, terms, Feedback(*marks), who.key_id)
    return {"judgements": [j.to_dict() for j in stored]}


@router.get("/feedback", response_model=FeedbackOut)
def list_feedback(found: Found) -> dict[str, Any]:
    return {"judgements": [j.to_dict() for j in found.feedback.list()]}
