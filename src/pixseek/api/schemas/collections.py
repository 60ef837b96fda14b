"""Collections: create, summarise, labels."""

from __future__ import annotations

from pydantic import BaseModel, Field


class CollectionCreate(BaseModel):
    name: str = Field(max_length=64)
    model: str = Field(default="", max_length=512)


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
