"""Bodies of the job routes: duplicates, match and classify."""

from __future__ import annotations

from pydantic import BaseModel, Field

from pixseek.api.schemas.body import Body
from pixseek.api.schemas.records import RecordOut


class DuplicateMember(BaseModel):
    record: RecordOut  # type: ignore[valid-type]
    keeper: bool
    tier: str
    score: float
    probability: float | None = Field(description="calibrated probability of a copy")
    view: str | None = Field(
        description="the view that linked it to the keeper (a corner, a turn), if one did"
    )


class DuplicateGroup(BaseModel):
    keeper: str
    members: list[DuplicateMember]


class DuplicateGroups(BaseModel):
    """``jobs.dedup.Duplicates.to_dict()``: the groups and the settings that made them."""

    threshold: float
    phash_distance: int
    calibrated: bool = Field(description="the threshold is the index's calibrated one")
    phash_calibrated: bool = Field(description="the radius is the index's calibrated one")
    across: str | None
    views: int = Field(description="images whose turned and corner views were compared")
    views_missing: int = Field(
        description="images with no views kept (a request makes none unless views=true; "
        "a views job makes them)"
    )
    groups: list[DuplicateGroup]


OUTSIDE_THRESHOLD = (
    "cosine; default: the index's calibrated threshold for outside images (few of the "
    "collection's own images reach it with another; GET /collections/{name}/indexes shows it)"
)


class MatchIn(Body):
    """An image from outside the collection, checked for copies of the collection's."""

    image: str = Field(description="the image file, base64-encoded")
    threshold: float | None = Field(default=None, ge=-1, le=1, description=OUTSIDE_THRESHOLD)
    views: bool = Field(
        default=True,
        description="compare a query that matches nothing as it is with the collection's "
        "kept turned and corner views, and try its own turned and centre views (false: as "
        "it is only, the CLI's --no-views)",
    )


class MatchBatchIn(Body):
    """Several images checked in one request: embedded a batch at a time."""

    images: list[str] = Field(
        min_length=1, max_length=64, description="the image files, base64-encoded"
    )
    threshold: float | None = Field(default=None, ge=-1, le=1, description=OUTSIDE_THRESHOLD)
    views: bool = Field(default=True, description="as in match")


class ClassifyIn(Body):
    """An image to label by the votes of its nearest labelled images."""

    image: str = Field(description="the image file, base64-encoded")
    k: int = Field(default=10, ge=1, le=1000, description="labelled neighbours that vote")


class MatchOut(BaseModel):
    record: RecordOut  # type: ignore[valid-type]
    tier: str
    score: float
    probability: float | None
    via: str
    box: list[float] | None = Field(description="the part of the image that matched")
    view: str


class Matches(BaseModel):
    """``jobs.match.MatchResult.to_dict()``."""

    threshold: float
    phash_distance: int
    calibrated: bool
    views: str = Field(
        description="the collection's turned and corner views: kept, made, missing (start "
        "a views job: corner crops are found through them) or off"
    )
    matches: list[MatchOut]


class MatchError(BaseModel):
    error: str = Field(description="why this image could not be matched (not an image, ...)")


class MatchBatch(BaseModel):
    """One answer an image, in the order given: its matches, or why it had none."""

    results: list[Matches | MatchError]


class PredictionOut(BaseModel):
    label: str | None
    confidence: float
    alternatives: list[tuple[str, float]]


class AccuracyOut(BaseModel):
    split: str
    images: int
    top1: float
    top5: float
