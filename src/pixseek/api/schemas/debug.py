"""Bodies of the model-debugging routes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from pixseek.api.schemas.body import Body
from pixseek.api.schemas.records import RecordOut
from pixseek.api.schemas.search import SearchIn


class SliceIn(Body):
    """The slice: the images a search returns (``query``), or these image ids."""

    query: SearchIn | None = None
    image_ids: list[str] = Field(default_factory=list, max_length=100_000)


class ClassRow(BaseModel):
    label: str
    truth: int
    precision: float | None
    recall: float | None
    ap50: float | None
    whole_precision: float | None
    whole_recall: float | None
    whole_ap50: float | None


class SliceOut(BaseModel):
    images: int
    map: float
    whole_map: float
    ap50: float
    whole_ap50: float
    recall: float | None
    whole_recall: float | None
    classes: list[ClassRow]


class BlindspotOut(BaseModel):
    kind: str
    name: str
    errors: int
    objects: int
    error_rate: float
    expected_rate: float
    lift: float
    lift_low: float
    lift_high: float
    names: list[str]
    examples: list[RecordOut]  # type: ignore[valid-type]


class BlindspotsIn(Body):
    """Blind spots among the objects of these images (a selection)."""

    image_ids: list[str] = Field(max_length=100_000)
    outcome: Literal["FN", "FP"] = "FN"
    clusters: int = Field(default=8, ge=1, le=50)
    kind: list[Literal["cluster", "box", "metadata"]] = Field(default_factory=list, max_length=3)
    top: int = Field(default=50, ge=1, le=500)


class Blindspots(BaseModel):
    outcome: str
    objects: int
    errors: int
    blindspots: list[BlindspotOut]


class LabelErrorOut(BaseModel):
    id: str
    label: str | None
    suggested: str
    mistakenness: float
    given_share: float
    suggested_share: float
    verdict: str | None
    record: RecordOut  # type: ignore[valid-type]


class LabelErrors(BaseModel):
    kind: str
    checked: int
    neighbours: int
    errors: list[LabelErrorOut]


class VerdictIn(Body):
    """A user's verdict on a suspected label error; null forgets it."""

    verdict: Literal["confirmed", "dismissed"] | None


class Verdicts(BaseModel):
    verdicts: dict[str, str]


class MapIn(Body):
    """Bring the stored map up to date (``refit``: fit it all again)."""

    model: str = Field(default="", max_length=500)
    refit: bool = False


class MapUpdate(BaseModel):
    index: str
    points: int
    added: int
    removed: int
    refitted: bool


class MapPoint(BaseModel):
    id: str
    image_id: str
    kind: str
    label: str | None
    source: str | None
    outcome: str | None
    split: str | None
    x: float
    y: float


class MapPage(BaseModel):
    index: str
    total: int
    offset: int
    points: list[MapPoint]


class UniquenessIn(Body):
    """The most unusual records, and a representative sample of ``sample`` when given."""

    kind: Literal["image", "object"] = "image"
    k: int = Field(default=5, ge=1, le=100)
    top: int = Field(default=20, ge=0, le=1000)
    sample: int | None = Field(default=None, ge=1, le=10_000)
    where: str = Field(default="", max_length=2000, description="a filter, as the CLI's --where")
    model: str = Field(default="", max_length=500, description="the index (default: the active)")


class ScoredOut(BaseModel):
    id: str
    uniqueness: float
    distance: float
    rank: int | None
    covering: float | None
    covers: int | None
    record: RecordOut  # type: ignore[valid-type]


class UniquenessOut(BaseModel):
    kind: str
    checked: int
    neighbours: int
    unusual: list[ScoredOut]
    sample: list[ScoredOut]
    coverage: float | None
