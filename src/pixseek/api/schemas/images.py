"""Uploads: images as base64 JSON (with boxes and metadata) or multipart files."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from pixseek.api.schemas.body import Body

Box = list[float]


class BoxIn(Body):
    box: Box = Field(min_length=4, max_length=4, description="[x, y, w, h] in pixels")
    label: str | None = None
    source: Literal["gt", "pred"] = "gt"
    confidence: float | None = Field(default=None, allow_inf_nan=False)


class ImageIn(Body):
    data: str = Field(description="the image file, base64-encoded")
    metadata: dict[str, Any] = Field(default_factory=dict)
    boxes: list[BoxIn] = Field(default_factory=list)
    filename: str = ""


class ImagesIn(Body):
    images: list[ImageIn] = Field(min_length=1)


class Ids(BaseModel):
    ids: list[str]
