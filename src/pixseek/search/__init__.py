"""Search over a collection's index: text, image, object and feedback queries."""

from pixseek.core.query import (
    Feedback,
    ImageQuery,
    RecordQuery,
    RegionQuery,
    SearchOptions,
    Term,
    TextQuery,
    parse_term,
)
from pixseek.search.engine import search

__all__ = [
    "Feedback",
    "ImageQuery",
    "RecordQuery",
    "RegionQuery",
    "SearchOptions",
    "Term",
    "TextQuery",
    "parse_term",
    "search",
]
