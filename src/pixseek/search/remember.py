"""Turn a search's relevance feedback into stored judgements.

A single text or a single stored image/object is kept as itself; any other query (a new
image, a drawn box, several weighted terms) as the digest of its query vector in the
index searched, so the same query gives the same key.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pixseek.collection.collection import Collection
from pixseek.collection.feedback import Judgement, QueryKind, digest
from pixseek.core.errors import EmptyQueryError
from pixseek.core.query import Feedback, RecordQuery, Term, TextQuery
from pixseek.search.engine import query_vector


def stored_query(
    collection: Collection, terms: Sequence[Term], index: str = ""
) -> tuple[QueryKind, str]:
    """How a query is kept with its judgements: text, record id or vector digest."""
    if not terms:
        raise EmptyQueryError("judgements are kept for a query: give one to remember them")
    if len(terms) == 1 and terms[0].weight == 1.0:
        part = terms[0].part
        if isinstance(part, TextQuery):
            return "text", part.text
        if isinstance(part, RecordQuery):
            return "record", part.id
    vector = query_vector(collection, collection.index(index), terms)
    return "digest", digest(np.asarray(vector, dtype="<f4").tobytes())


def remember(
    collection: Collection,
    terms: Sequence[Term],
    feedback: Feedback,
    key_id: str = "",
    index: str = "",
) -> list[Judgement]:
    """Store the feedback's marks as judgements of the query; returns what was stored."""
    if not feedback:
        return []
    kind, query = stored_query(collection, terms, index)
    for record_id in (*feedback.positives, *feedback.negatives):
        collection.get(record_id)  # an unknown id is a 404, not a stored judgement
    judgements = [Judgement(kind, query, i, 1, key_id) for i in feedback.positives]
    judgements += [Judgement(kind, query, i, -1, key_id) for i in feedback.negatives]
    return collection.feedback.add(judgements)
