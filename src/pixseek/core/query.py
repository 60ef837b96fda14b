"""What a search asks for: weighted query terms, relevance feedback and options.

A query is a list of :class:`Term` values; each term is a text, a stored record
(image or object), a new image (optionally a box in it) or a box drawn on a
stored image. Negative weights push results away.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal

from pixseek.core.errors import EmptyQueryError, InvalidInputError
from pixseek.core.filters import Filter
from pixseek.core.records import BoxTuple, Kind

MAX_QUERY_CHARS = 1000  # CLIP-family models read at most a few dozen tokens
AUTO = "auto"  # min_score: the index's calibrated cutoff


@dataclass(frozen=True, slots=True)
class TextQuery:
    text: str

    def __post_init__(self) -> None:
        if len(self.text) > MAX_QUERY_CHARS:
            raise InvalidInputError(
                f"query text has {len(self.text)} characters; the limit is {MAX_QUERY_CHARS}"
            )


@dataclass(frozen=True, slots=True)
class RecordQuery:
    """An indexed image or object, by id: its stored vector is the query."""

    id: str


@dataclass(frozen=True, slots=True)
class ImageQuery:
    """A new image (bytes), or a box inside it."""

    data: bytes
    box: BoxTuple | None = None


@dataclass(frozen=True, slots=True)
class RegionQuery:
    """A box drawn on an indexed image."""

    image_id: str
    box: BoxTuple


QueryPart = TextQuery | RecordQuery | ImageQuery | RegionQuery


@dataclass(frozen=True, slots=True)
class Term:
    part: QueryPart
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.weight):
            raise InvalidInputError(f"query weight must be a finite number, got {self.weight}")


@dataclass(frozen=True, slots=True)
class Feedback:
    """Relevance feedback: records marked relevant / not relevant (Rocchio's update).

    ``q' = alpha * q + beta * mean(positives) - gamma * mean(negatives)``; the
    classic weights trust the user's marks less than the query itself.
    """

    positives: tuple[str, ...] = ()
    negatives: tuple[str, ...] = ()
    alpha: float = 1.0
    beta: float = 0.75
    gamma: float = 0.25

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "gamma"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise InvalidInputError(f"feedback {name} must be finite and >= 0, got {value}")
        both = sorted(set(self.positives) & set(self.negatives))
        if both:  # a mark both ways cancels itself, and would be stored as two judgements
            raise InvalidInputError(
                f"marked both more like and less like: {', '.join(both)}; choose one"
            )

    def __bool__(self) -> bool:
        return bool(self.positives or self.negatives)


DEFAULT_FEEDBACK = Feedback()


@dataclass(frozen=True, slots=True)
class SearchOptions:
    """``index`` names the collection's index (model) to search; empty: its default."""

    k: int = 10
    kind: Kind | None = None
    where: Filter = field(default_factory=Filter)
    # a cosine, or "auto": the index's calibrated cutoff under which images are unrelated
    # (for queries by image; see pixseek.search.engine.resolve_min_score)
    min_score: float | Literal["auto"] | None = None
    feedback: Feedback = DEFAULT_FEEDBACK
    index: str = ""

    def __post_init__(self) -> None:
        if self.k < 1:
            raise InvalidInputError(f"k must be at least 1, got {self.k}")
        if isinstance(self.min_score, str):
            if self.min_score != AUTO:
                raise InvalidInputError(f'min_score is a number or "auto", got {self.min_score!r}')
        elif self.min_score is not None and not -1.0 <= self.min_score <= 1.0:
            # NaN fails this too; above 1 no cosine passes, below -1 every one does
            raise InvalidInputError(f"min_score is a cosine in [-1, 1], got {self.min_score}")

    def store_filter(self) -> Filter:
        kind = Filter.where({"kind": self.kind}) if self.kind else Filter()
        return kind.and_(self.where)


_TERM = re.compile(r"(?P<sign>[+-]?)(?:(?P<weight>\d+(?:\.\d+)?)\*)?(?P<body>.*)", re.DOTALL)


def parse_term(token: str) -> Term:
    """``dog``, ``+dog``, ``-grass``, ``-0.5*grass``, ``id:3f2a…``, ``-id:3f2a…``."""
    match = _TERM.fullmatch(token.strip())
    assert match is not None  # the pattern matches any string
    body = match["body"].strip()
    if not body:
        raise EmptyQueryError(f"query term {token!r} is empty")
    weight = float(match["weight"] or 1.0) * (-1.0 if match["sign"] == "-" else 1.0)
    part: QueryPart = RecordQuery(body[3:]) if body.startswith("id:") else TextQuery(body)
    return Term(part, weight)
