"""Training pairs from stored judgements: a text query and a result judged relevant is a
positive pair; one judged irrelevant is a hard negative for that text.

Judgements of held-out results (:func:`pixseek.collection.feedback.held_out`) are left
out, so that evaluation can measure the trained model on results it never saw. Queries
kept as an image id or a vector digest have no text to train a text tower on and are
skipped (they still count in evaluation through their stored vectors).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pixseek.collection.collection import Collection
from pixseek.collection.feedback import HELD_OUT_FRACTION, held_out
from pixseek.core.errors import InvalidInputError
from pixseek.training.data import Pair


@dataclass(slots=True)
class FeedbackPairs:
    positives: list[Pair] = field(default_factory=list)
    negatives: list[Pair] = field(default_factory=list)
    held_out: int = 0  # judgements kept for evaluation
    skipped: int = 0  # judgements without a text query, or of a result that is not an image


def pairs_from_feedback(
    collection: Collection, fraction: float = HELD_OUT_FRACTION
) -> FeedbackPairs:
    judgements = collection.feedback.list()
    if not judgements:
        raise InvalidInputError(
            "no judgements are stored with this collection (search --more-like/--less-like "
            "--remember, the API's /feedback or the web UI's buttons store them)"
        )
    records = collection.get_many(list(dict.fromkeys(j.result_id for j in judgements)))
    found = FeedbackPairs()
    seen: set[tuple[str, str, int]] = set()
    for j in judgements:
        record = records.get(j.result_id)
        if held_out(j.result_id, fraction):
            found.held_out += 1
        elif j.query_kind != "text" or record is None or record.kind != "image":
            found.skipped += 1
        elif (j.query, j.result_id, j.value) not in seen:  # the same mark twice counts once
            seen.add((j.query, j.result_id, j.value))
            pair = Pair(record.id, record.path, j.query, record.label)
            (found.positives if j.value > 0 else found.negatives).append(pair)
    if not found.positives:
        raise InvalidInputError(
            "no judgement to train on: training needs results marked relevant for text "
            f"queries ({found.held_out} held out for evaluation, {found.skipped} without a "
            "text query)"
        )
    return found
