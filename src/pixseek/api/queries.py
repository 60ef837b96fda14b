"""Turn API query bodies into library search terms."""

from __future__ import annotations

import base64
import binascii

from pixseek.api.schemas import QueryIn, SearchIn
from pixseek.errors import EmptyQueryError, ImageDecodeError, InvalidInputError
from pixseek.records import BoxTuple
from pixseek.search import ImageQuery, QueryPart, RecordQuery, RegionQuery, Term, TextQuery


def decode_base64(data: str, what: str = "image") -> bytes:
    try:
        return base64.b64decode(
            data.split(",", 1)[-1] if data.startswith("data:") else data, validate=True
        )
    except (binascii.Error, ValueError) as exc:
        raise ImageDecodeError(f"{what} is not valid base64") from exc


def _part(query: QueryIn) -> QueryPart:
    box: BoxTuple | None = tuple(query.box) if query.box else None  # type: ignore[assignment]
    given = [name for name in ("text", "image_id", "object_id", "image") if getattr(query, name)]
    if len(given) != 1:
        raise InvalidInputError(
            f"each query part takes one of text, image_id, object_id or "
            f"image; got {', '.join(given) or 'none'}"
        )
    if query.text is not None:
        if box is not None:
            raise InvalidInputError("a box goes with image_id or image, not with text")
        return TextQuery(query.text)
    if query.object_id is not None:
        return RecordQuery(query.object_id)
    if query.image_id is not None:
        return RegionQuery(query.image_id, box) if box else RecordQuery(query.image_id)
    return ImageQuery(decode_base64(query.image or ""), box)


def search_terms(body: SearchIn) -> list[Term]:
    terms = []
    if not body.is_empty():
        terms.append(Term(_part(body), body.weight))
    terms += [Term(_part(q), q.weight) for q in body.positives]
    terms += [Term(_part(q), -q.weight) for q in body.negatives]
    if not any(term.weight > 0 for term in terms) and not body.more_like:
        raise EmptyQueryError("the query is empty: give text, image_id, object_id or image")
    return terms
