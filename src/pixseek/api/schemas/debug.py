"""Bodies of the model-debugging routes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from pixseek.api.schemas.records import RecordOut
from pixseek.api.schemas.search import SearchIn


class SliceIn(BaseModel):
    """The slice: the images a search returns (``query``), or these image ids."""

    model_config = ConfigDict(allow_inf_nan=False)

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
    errors: int
    objects: int
    error_rate: float
    lift: float
    names: list[str]
    examples: list[RecordOut]  # type: ignore[valid-type]


class Blindspots(BaseModel):
    blindspots: list[BlindspotOut]
