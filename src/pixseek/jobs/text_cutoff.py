"""Search's "no match" cutoff for text queries, measured on the collection's own labels.

A text query and an image meet on a scale of their own: a caption scores far below a copy,
and where a right hit stops differs from model to model (and from the image-to-image
``unrelated`` level that ``--min-score auto`` uses for queries by image). Where the
collection has labels, they say which hits are right: each label is asked as a text
(``"a photo of a {label}"``, the prompt zero-shot evaluation uses), the records with that
label are its right hits and every other labelled record a wrong one, and the cutoff is
the lowest cosine at which the hits of all those queries together are right with the
calibration's target precision (the lower end of its interval, as for copies). It is
measured with the copy calibration and kept with it; a collection without labels has
none, and its text queries need a number.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from pixseek.collection.index import Index
from pixseek.core.calibration import TextCutoff
from pixseek.core.filters import Filter
from pixseek.core.ids import in_content_order
from pixseek.core.records import Record
from pixseek.jobs.precision import fit_threshold
from pixseek.training.data import DEFAULT_TEMPLATES

RECORDS = 5000  # labelled records scored, chosen by their content
LABELS = 1000  # the most frequent labels among them, each asked once
MIN_LABELS = 2  # one label has no wrong hits to measure


def measure_text_cutoff(index: Index, target_precision: float) -> TextCutoff | None:
    """The cutoff for ``index`` (see the module), None where its model embeds no text or
    its images (else its objects) carry fewer than two labels."""
    if not index.embedder.capabilities.text:
        return None
    for kind in ("image", "object"):
        records = _labelled(index, kind)
        if len({r.label for r in records}) >= MIN_LABELS:
            break
    else:
        return None
    stored = index.store.get_vectors([r.id for r in records])
    records = [r for r in records if r.id in stored]
    labels = [label for label, _ in Counter(r.label for r in records).most_common(LABELS)]
    if len(labels) < MIN_LABELS:
        return None
    prompts = index.embedder.embed_texts([DEFAULT_TEMPLATES[0].format(label=x) for x in labels])
    vectors = np.stack([np.asarray(stored[r.id], np.float32) for r in records])
    scores = np.asarray(prompts, np.float32) @ vectors.T  # (labels, records)
    row = {label: n for n, label in enumerate(labels)}
    own = np.asarray([row.get(r.label or "", -1) for r in records])
    right = np.zeros(scores.shape, bool)
    asked = np.flatnonzero(own >= 0)
    right[own[asked], asked] = True
    fit = fit_threshold(scores[right], scores[~right], target_precision)
    return TextCutoff(
        threshold=round(fit.threshold, 6),
        precision=round(fit.precision, 4),
        recall=round(fit.recall, 4),
        labels=len(labels),
        records=len(records),
        kind=kind,
    )


def _labelled(index: Index, kind: str) -> list[Record]:
    """Up to :data:`RECORDS` records of ``kind`` that carry a label, by their content."""
    records = [
        r for batch, _ in index.store.scan(Filter.where({"kind": kind})) for r in batch if r.label
    ]
    return in_content_order(records, "text")[:RECORDS]
