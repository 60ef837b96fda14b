"""``/collections/{name}/duplicates``, ``/match`` and ``/classify``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from pixseek.api.deps import collection, decode_slot
from pixseek.api.schemas.jobs import (
    AccuracyOut,
    DuplicateGroups,
    ImageJobIn,
    Matches,
    PredictionOut,
)
from pixseek.api.schemas.records import record_out
from pixseek.api.schemas.search import decode_base64
from pixseek.collection.collection import Collection
from pixseek.jobs.classify import ClassifyOptions, classify_images, evaluate_split
from pixseek.jobs.dedup import DedupOptions, find_duplicates
from pixseek.jobs.match import MatchOptions, match_image

router = APIRouter(prefix="/collections/{name}", tags=["jobs"])
Found = Annotated[Collection, Depends(collection)]


@router.get("/duplicates", response_model=DuplicateGroups)
def duplicates(
    found: Found,
    threshold: Annotated[float, Query(ge=-1, le=1)] = 0.95,
    tiers: str = "exact,phash,embedding",
) -> dict[str, Any]:
    options = DedupOptions(threshold=threshold, tiers=tuple(t for t in tiers.split(",") if t))
    groups = find_duplicates(found, options=options)
    return {
        "groups": [
            [
                {
                    "record": record_out(m.record),
                    "keeper": m.keeper,
                    "tier": m.tier,
                    "score": m.score,
                }
                for m in group.members
            ]
            for group in groups
        ]
    }


@router.post("/match", response_model=Matches)
def match(request: Request, found: Found, body: ImageJobIn) -> dict[str, Any]:
    with decode_slot(request):
        matches = match_image(
            found, decode_base64(body.image), options=MatchOptions(body.threshold)
        )
    return {
        "matches": [
            {"record": record_out(m.record), "tier": m.tier, "score": m.score, "via": m.via}
            for m in matches
        ]
    }


@router.post("/classify", response_model=PredictionOut)
def classify(request: Request, found: Found, body: ImageJobIn) -> dict[str, Any]:
    with decode_slot(request):
        prediction = classify_images(
            found, [decode_base64(body.image)], options=ClassifyOptions(body.k)
        )
    return asdict(prediction[0])


@router.get("/classify/evaluate", response_model=AccuracyOut)
def evaluate(
    found: Found, split: str = "test", k: Annotated[int, Query(ge=1, le=1000)] = 10
) -> dict[str, Any]:
    return asdict(evaluate_split(found, split, options=ClassifyOptions(k)))
