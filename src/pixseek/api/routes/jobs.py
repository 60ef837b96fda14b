"""``/collections/{name}/duplicates``, ``/match`` and ``/classify``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from pixseek.api.deps import collection, decode_slot
from pixseek.api.schemas.jobs import (
    AccuracyOut,
    ClassifyIn,
    DuplicateGroups,
    MatchBatch,
    MatchBatchIn,
    Matches,
    MatchIn,
    PredictionOut,
)
from pixseek.api.schemas.search import decode_base64
from pixseek.collection.collection import Collection
from pixseek.jobs.classify import ClassifyOptions, classify_images, evaluate_split
from pixseek.jobs.dedup import MAX_RADIUS, DedupOptions, find_duplicates
from pixseek.jobs.match import MatchOptions, match_image, match_images

router = APIRouter(prefix="/collections/{name}", tags=["jobs"])
Found = Annotated[Collection, Depends(collection)]


@router.get("/duplicates", response_model=DuplicateGroups)
def duplicates(
    found: Found,
    threshold: Annotated[float | None, Query(ge=-1, le=1)] = None,
    phash_distance: Annotated[int | None, Query(ge=0, le=MAX_RADIUS)] = None,
    tiers: str = "exact,phash,embedding",
    across: Annotated[str, Query(pattern="^(|split|label|source)$")] = "",
    views: bool | None = None,
) -> dict[str, Any]:
    """Compares the views kept with the index but makes none inside the request unless
    ``views=true`` (seven embeddings an image): ``views_missing`` counts the images a
    ``views`` job would make them for."""
    options = DedupOptions(
        threshold=threshold,
        phash_distance=phash_distance,
        tiers=tuple(t for t in tiers.split(",") if t),
        across=across,
        views=views,
        make_views_up_to=0,
    )
    return find_duplicates(found, options=options).to_dict()


@router.post("/match", response_model=Matches)
def match(request: Request, found: Found, body: MatchIn) -> dict[str, Any]:
    """Uses the views kept with the index but makes none inside the request (a first
    query would embed seven views of every image): ``views: "missing"`` says to start a
    ``views`` job."""
    options = MatchOptions(threshold=body.threshold, views=body.views, make_views_up_to=0)
    with decode_slot(request):
        result = match_image(found, decode_base64(body.image), options=options)
    return result.to_dict()


@router.post("/match/batch", response_model=MatchBatch)
def match_batch(request: Request, found: Found, body: MatchBatchIn) -> dict[str, Any]:
    """Up to 64 images in one request, embedded a batch at a time (as ``pixseek match
    FOLDER``); an image that cannot be decoded gets ``{"error": ...}`` in its place and
    costs the others nothing. Views are used as by ``/match``, never made."""
    options = MatchOptions(threshold=body.threshold, views=body.views, make_views_up_to=0)
    images = [decode_base64(image, f"image {n}") for n, image in enumerate(body.images)]
    with decode_slot(request):
        answers = match_images(found, images, options=options)
    return {
        "results": [{"error": str(a)} if isinstance(a, Exception) else a.to_dict() for a in answers]
    }


@router.post("/classify", response_model=PredictionOut)
def classify(request: Request, found: Found, body: ClassifyIn) -> dict[str, Any]:
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
