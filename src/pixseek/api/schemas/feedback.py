"""Judgements: a result marked relevant (+1) or not (-1) for a query, kept with the
collection."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from pixseek.api.schemas.body import Body
from pixseek.api.schemas.search import QueryIn


class JudgementIn(Body):
    query: QueryIn = Field(description="the query the result answered: one of its parts")
    result_id: str = Field(min_length=1, max_length=256)
    value: Literal[1, -1]


class FeedbackIn(Body):
    judgements: list[JudgementIn] = Field(min_length=1, max_length=256)


class JudgementOut(BaseModel):
    id: int
    query_kind: str
    query: str
    result_id: str
    value: int
    key_id: str
    at: float


class FeedbackOut(BaseModel):
    judgements: list[JudgementOut]
