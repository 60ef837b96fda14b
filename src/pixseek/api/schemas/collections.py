"""Collections: create, summarise, labels, indexes."""

from __future__ import annotations

from pydantic import BaseModel, Field

from pixseek.api.schemas.body import Body
from pixseek.core.calibration import CopyCalibration


class CollectionCreate(Body):
    name: str = Field(max_length=64)
    model: str = Field(default="", max_length=512)
    # a registered model family (see `pixseek models --available`); auto: hf-clip
    family: str = Field(default="auto", max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")


class CollectionSummary(BaseModel):
    name: str
    model: str
    dim: int
    runtime: str
    precision: str
    images: int
    objects: int
    failures: int


class Labels(BaseModel):
    labels: dict[str, int]


class IndexOut(BaseModel):
    name: str
    model: str
    family: str
    dim: int
    runtime: str
    precision: str
    records: int
    state: str
    active: bool
    calibration: CopyCalibration | None = Field(
        default=None,
        description="how the index's model scores copies: the duplicates threshold and hash "
        "radius, precision and recall by edit, and match's levels for outside images "
        "(false_alarms); null until the index has enough images to measure",
    )


class Indexes(BaseModel):
    """A collection's indexes; ``active`` names the one searches use by default."""

    active: str
    indexes: list[IndexOut]


class ActiveIndexIn(Body):
    """The index (by name or model) that searches should use from now on."""

    index: str = Field(min_length=1, max_length=500)
