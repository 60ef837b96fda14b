"""``/collections/{name}/slice`` and ``/blindspots``: a detector's metrics where it fails."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from pixseek.api.deps import collection, decode_slot
from pixseek.api.schemas.debug import Blindspots, SliceIn, SliceOut
from pixseek.api.schemas.records import record_out
from pixseek.collection.collection import Collection
from pixseek.jobs.debug import ClassMetrics, find_blindspots, slice_report
from pixseek.search.engine import search

router = APIRouter(prefix="/collections/{name}", tags=["debugging"])
Found = Annotated[Collection, Depends(collection)]


def _row(whole: ClassMetrics, inside: ClassMetrics) -> dict[str, Any]:
    return {
        "label": whole.label,
        "truth": inside.truth,
        "precision": inside.precision,
        "recall": inside.recall,
        "ap50": inside.ap50,
        "whole_precision": whole.precision,
        "whole_recall": whole.recall,
        "whole_ap50": whole.ap50,
    }


@router.post("/slice", response_model=SliceOut)
def slice_metrics(request: Request, found: Found, body: SliceIn) -> dict[str, Any]:
    ids = set(body.image_ids)
    if body.query is not None:
        options = body.query.options()
        with decode_slot(request, body.query.has_images()):
            hits = search(found, body.query.terms(), options)
        ids |= {hit.image_id for hit in hits}
    report = slice_report(found, ids)
    return {
        "images": report.inside.images,
        "map": report.inside.map,
        "whole_map": report.whole.map,
        "ap50": report.inside.ap50,
        "whole_ap50": report.whole.ap50,
        "recall": report.inside.recall,
        "whole_recall": report.whole.recall,
        "classes": [
            _row(report.whole.classes[label], inside)
            for label, inside in report.inside.classes.items()
            if inside.truth or inside.fp
        ],
    }


@router.get("/blindspots", response_model=Blindspots)
def blindspots(
    found: Found,
    outcome: Annotated[str, Query(pattern="^(FN|FP)$")] = "FN",
    clusters: Annotated[int, Query(ge=1, le=50)] = 8,
) -> dict[str, Any]:
    spots = find_blindspots(found, outcome=outcome, clusters=clusters)
    return {
        "blindspots": [
            {
                "errors": s.errors,
                "objects": s.objects,
                "error_rate": s.error_rate,
                "lift": s.lift,
                "names": s.names,
                "examples": [record_out(r) for r in s.examples],
            }
            for s in spots
        ]
    }
