"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

Box = list[float]


def _check_box(value: Box | None) -> Box | None:
    if value is not None and len(value) != 4:
        raise ValueError("a box is [x, y, w, h]")
    return value


class CollectionCreate(BaseModel):
    name: str
    model: str = ""


class CollectionSummary(BaseModel):
    name: str
    model: str
    dim: int
    images: int
    objects: int
    failures: int


class BoxIn(BaseModel):
    box: Box
    label: str | None = None
    source: Literal["gt", "pred"] = "gt"
    score: float | None = None

    _box = field_validator("box")(_check_box)


class ImageIn(BaseModel):
    data: str = Field(description="the image file, base64-encoded")
    metadata: dict[str, Any] = Field(default_factory=dict)
    boxes: list[BoxIn] = Field(default_factory=list)
    filename: str = ""


class ImagesIn(BaseModel):
    images: list[ImageIn] = Field(min_length=1)


class Ids(BaseModel):
    ids: list[str]


class QueryIn(BaseModel):
    """One query part: a text, a stored image or object, a new image, or a box on one."""

    text: str | None = None
    image_id: str | None = None
    object_id: str | None = None
    image: str | None = Field(default=None, description="a new image, base64-encoded")
    box: Box | None = None
    weight: float = Field(default=1.0, gt=0)

    _box = field_validator("box")(_check_box)

    def is_empty(self) -> bool:
        return not (self.text or self.image_id or self.object_id or self.image)


class FeedbackWeights(BaseModel):
    """Rocchio weights: query, mean of relevant results, mean of irrelevant ones."""

    alpha: float = Field(default=1.0, ge=0)
    beta: float = Field(default=0.75, ge=0)
    gamma: float = Field(default=0.25, ge=0)


class SearchIn(QueryIn):
    """The top-level fields are one positive query; ``positives``/``negatives`` add more.

    ``more_like``/``less_like`` are relevance feedback: ids of results the user
    marked, folded into the query vector with ``feedback_weights``.
    """

    weight: float = Field(default=1.0, gt=0)
    positives: list[QueryIn] = Field(default_factory=list)
    negatives: list[QueryIn] = Field(default_factory=list)
    more_like: list[str] = Field(default_factory=list)
    less_like: list[str] = Field(default_factory=list)
    feedback_weights: FeedbackWeights = Field(default_factory=FeedbackWeights)
    k: int = Field(default=10, ge=1, le=1000)
    kind: Literal["image", "object", "both"] = "both"
    where: dict[str, str | list[str]] | None = None
    min_score: float | None = None


class HitOut(BaseModel):
    id: str
    kind: Literal["image", "object"]
    image_id: str
    path: str
    score: float
    width: int
    height: int
    box: Box | None
    label: str | None
    source: str | None
    metadata: dict[str, Any]


class Hits(BaseModel):
    hits: list[HitOut]


class RecordPage(BaseModel):
    records: list[HitOut]
    offset: int
    total: int


class Labels(BaseModel):
    labels: dict[str, int]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
