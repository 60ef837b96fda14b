"""Bodies of the job routes: duplicates, match and classify."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from pixseek.api.schemas.records import RecordOut


class DuplicateMember(BaseModel):
    record: RecordOut  # type: ignore[valid-type]
    keeper: bool
    tier: str
    score: float


class DuplicateGroups(BaseModel):
    groups: list[list[DuplicateMember]]


class ImageJobIn(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    image: str = Field(description="the image file, base64-encoded")
    threshold: float = Field(default=0.9, ge=-1, le=1)
    k: int = Field(default=10, ge=1, le=1000)


class MatchOut(BaseModel):
    record: RecordOut  # type: ignore[valid-type]
    tier: str
    score: float
    via: str


class Matches(BaseModel):
    matches: list[MatchOut]


class PredictionOut(BaseModel):
    label: str | None
    confidence: float
    alternatives: list[tuple[str, float]]


class AccuracyOut(BaseModel):
    split: str
    images: int
    top1: float
    top5: float
