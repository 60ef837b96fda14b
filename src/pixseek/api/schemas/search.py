"""Search bodies, and their conversion into the library's query values."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from pydantic import Field

from pixseek.api.schemas.body import Body
from pixseek.core.errors import EmptyQueryError, ImageDecodeError, InvalidInputError
from pixseek.core.filters import Filter
from pixseek.core.query import (
    DEFAULT_FEEDBACK,
    MAX_QUERY_CHARS,
    Feedback,
    ImageQuery,
    QueryPart,
    RecordQuery,
    RegionQuery,
    SearchOptions,
    Term,
    TextQuery,
)
from pixseek.core.records import BoxTuple

# A filter is cheap to compile and run only while it is small: a million values took
# half a minute and gigabytes. These bound the clauses, the values of one field and
# the length of each.
MAX_WHERE_FIELDS = 16
MAX_WHERE_VALUES = 1000
MAX_WHERE_CHARS = 1000
WhereText = Annotated[str, Field(max_length=MAX_WHERE_CHARS)]
WhereValues = Annotated[list[WhereText], Field(max_length=MAX_WHERE_VALUES)]
Where = Annotated[
    dict[Annotated[str, Field(max_length=64)], WhereText | WhereValues],
    Field(max_length=MAX_WHERE_FIELDS),
]


def decode_base64(data: str, what: str = "image") -> bytes:
    try:
        return base64.b64decode(
            data.split(",", 1)[-1] if data.startswith("data:") else data, validate=True
        )
    except (binascii.Error, ValueError) as exc:
        raise ImageDecodeError(f"{what} is not valid base64") from exc


class QueryIn(Body):
    """One query part: a text, a stored image or object, a new image, or a box on one."""

    text: str | None = Field(default=None, max_length=MAX_QUERY_CHARS)
    image_id: str | None = None
    object_id: str | None = None
    image: str | None = Field(default=None, description="a new image, base64-encoded")
    box: list[float] | None = Field(default=None, min_length=4, max_length=4)
    weight: float = Field(default=1.0, gt=0)

    def is_empty(self) -> bool:
        return not (self.text or self.image_id or self.object_id or self.image)

    def part(self) -> QueryPart:
        box: BoxTuple | None = tuple(self.box) if self.box else None  # type: ignore[assignment]
        given = [n for n in ("text", "image_id", "object_id", "image") if getattr(self, n)]
        if len(given) != 1:
            raise InvalidInputError(
                f"each query part takes one of text, image_id, object_id or "
                f"image; got {', '.join(given) or 'none'}"
            )
        if self.text is not None:
            if box is not None:
                raise InvalidInputError("a box goes with image_id or image, not with text")
            return TextQuery(self.text)
        if self.object_id is not None:
            return RecordQuery(self.object_id)
        if self.image_id is not None:
            return RegionQuery(self.image_id, box) if box else RecordQuery(self.image_id)
        return ImageQuery(decode_base64(self.image or ""), box)


class FeedbackWeights(Body):
    """Rocchio weights: query, mean of relevant results, mean of irrelevant ones."""

    alpha: float = Field(default=DEFAULT_FEEDBACK.alpha, ge=0)
    beta: float = Field(default=DEFAULT_FEEDBACK.beta, ge=0)
    gamma: float = Field(default=DEFAULT_FEEDBACK.gamma, ge=0)


class SearchIn(QueryIn):
    """The top-level fields are one positive query; ``positives``/``negatives`` add more.

    ``more_like``/``less_like`` are relevance feedback: ids of results the user
    marked, folded into the query vector with ``feedback_weights``. ``where`` maps
    a field to a value or a list of values, e.g. ``{"label": ["dog", "cat"]}``: at most
    ``MAX_WHERE_FIELDS`` fields and ``MAX_WHERE_VALUES`` values each.
    """

    positives: list[QueryIn] = Field(default_factory=list, max_length=32)
    negatives: list[QueryIn] = Field(default_factory=list, max_length=32)
    more_like: list[str] = Field(default_factory=list, max_length=256)
    less_like: list[str] = Field(default_factory=list, max_length=256)
    feedback_weights: FeedbackWeights = Field(default_factory=FeedbackWeights)
    k: int = Field(default=10, ge=1, le=1000)
    kind: str = Field(default="both", pattern="^(image|object|both)$")
    where: Where | None = None
    min_score: float | Literal["auto"] | None = Field(
        default=None,
        description='drop hits below this cosine; "auto": below the index\'s calibrated '
        "cutoff (queries by image: what unrelated images reach; text queries: measured on "
        "the collection's labels; GET /collections/{name}/indexes shows both)",
    )
    index: str = ""
    remember: bool = Field(
        default=False, description="store more_like/less_like as judgements of this query"
    )

    def has_images(self) -> bool:
        """Whether the query sends an image to decode (it then takes a decode slot)."""
        return any(q.image for q in (self, *self.positives, *self.negatives))

    def terms(self) -> list[Term]:
        terms = []
        if not self.is_empty():
            terms.append(Term(self.part(), self.weight))
        terms += [Term(q.part(), q.weight) for q in self.positives]
        terms += [Term(q.part(), -q.weight) for q in self.negatives]
        if not any(term.weight > 0 for term in terms) and not self.more_like:
            raise EmptyQueryError("the query is empty: give text, image_id, object_id or image")
        return terms

    def options(self) -> SearchOptions:
        feedback = Feedback(
            tuple(self.more_like), tuple(self.less_like), **self.feedback_weights.model_dump()
        )
        return SearchOptions(
            k=self.k,
            kind=None if self.kind == "both" else self.kind,  # type: ignore[arg-type]
            where=Filter.where(self.where),
            min_score=self.min_score,
            feedback=feedback,
            index=self.index,
        )
