"""Retrieval quality of a collection's model on its own data.

Text→image recall@K: the share of captions whose own image ranks in the top K
of all images. Image→text recall@K: the share of images with one of their own
captions in the top K of all captions. Zero-shot accuracy: the share of
labelled images whose nearest label prompt is their label.

Stored judgements: each query ranks the results judged for it that were held out from
training (a condensed list: unjudged images neither help nor hurt), and the ranking is
scored by nDCG@10 (a relevant result gains 1, an irrelevant one 0) and recall@K (the
share of relevant results in the top K).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pixseek.collection.feedback import HELD_OUT_FRACTION, Judgement, held_out
from pixseek.collection.index import Index
from pixseek.core.paths import local_path
from pixseek.imaging.decode import load_image_file
from pixseek.models.base import Embedder, Vectors
from pixseek.training.data import DEFAULT_TEMPLATES, Pair

KS = (1, 5, 10)


@dataclass(frozen=True, slots=True)
class EvalReport:
    images: int
    texts: int
    text_to_image: dict[int, float] = field(default_factory=dict)
    image_to_text: dict[int, float] = field(default_factory=dict)
    zero_shot_accuracy: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class FeedbackReport:
    """Held-out judgements measured on one index: how many queries and judgements
    counted, nDCG@10 and recall@K averaged over the queries."""

    queries: int
    judgements: int
    ndcg_at_10: float | None = None
    recall: dict[int, float] = field(default_factory=dict)
    skipped: int = 0  # held-out judgements this index cannot rank (a query by digest)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def recall_at(
    similarity: Vectors, relevant: Sequence[set[int]], ks: Sequence[int]
) -> dict[int, float]:
    """Rows are queries, columns candidates; ``relevant[q]`` holds the right columns of row q."""
    order = np.argsort(-similarity, axis=1, kind="stable")
    result = {}
    for k in ks:
        top = order[:, :k]
        result[k] = float(
            np.mean([bool(relevant[q] & set(top[q].tolist())) for q in range(len(relevant))])
        )
    return result


def _image_vectors(
    index: Index, pairs: Sequence[Pair], ids: Sequence[str], embedder: Embedder | None
) -> Vectors:
    """The stored vectors, or, to measure another model, the images embedded anew."""
    if embedder is None:
        stored = index.store.get_vectors(list(ids))
        return np.stack([stored[i] for i in ids])
    paths = {p.image_id: p.path for p in pairs}
    return embedder.embed_images([load_image_file(local_path(paths[i])) for i in ids])


def evaluate(
    index: Index,
    pairs: Sequence[Pair],
    ks: Sequence[int] = KS,
    templates: Sequence[str] = DEFAULT_TEMPLATES,
    zero_shot: bool = False,
    embedder: Embedder | None = None,
) -> EvalReport:
    image_ids = list(dict.fromkeys(p.image_id for p in pairs))
    texts = list(dict.fromkeys(p.text for p in pairs))
    image_index = {i: n for n, i in enumerate(image_ids)}
    text_index = {t: n for n, t in enumerate(texts)}
    images = _image_vectors(index, pairs, image_ids, embedder)
    text_model = embedder or index.embedder
    text_vectors = text_model.embed_texts(texts)
    similarity = text_vectors @ images.T
    images_of_text = [set[int]() for _ in texts]
    texts_of_image = [set[int]() for _ in image_ids]
    for p in pairs:
        images_of_text[text_index[p.text]].add(image_index[p.image_id])
        texts_of_image[image_index[p.image_id]].add(text_index[p.text])
    report = EvalReport(
        images=len(image_ids),
        texts=len(texts),
        text_to_image=recall_at(similarity, images_of_text, ks),
        image_to_text=recall_at(similarity.T, texts_of_image, ks),
    )
    if not zero_shot:
        return report
    labelled = [(image_index[p.image_id], p.label) for p in pairs if p.label]
    labels = sorted({label for _, label in labelled if label})
    if not labels:
        return report
    prompts = text_model.embed_texts([templates[0].format(label=name) for name in labels])
    chosen = np.argmax(images @ prompts.T, axis=1)
    unique = dict(labelled)
    correct = [labels[chosen[i]] == label for i, label in unique.items()]
    return EvalReport(
        report.images,
        report.texts,
        report.text_to_image,
        report.image_to_text,
        float(np.mean(correct)),
    )


def ndcg(gains: Sequence[float], k: int = 10) -> float:
    """nDCG@k of a ranked list of gains (1 relevant, 0 not)."""

    def dcg(values: Sequence[float]) -> float:
        return sum(g / math.log2(rank + 2) for rank, g in enumerate(values[:k]))

    ideal = dcg(sorted(gains, reverse=True))
    return dcg(gains) / ideal if ideal > 0 else 0.0


def feedback_eval(
    index: Index,
    judgements: Sequence[Judgement],
    ks: Sequence[int] = KS,
    fraction: float = HELD_OUT_FRACTION,
) -> FeedbackReport:
    """Rank each query's held-out judged results with ``index``'s vectors."""
    kept = [j for j in judgements if held_out(j.result_id, fraction)]
    by_query: dict[tuple[str, str], dict[str, int]] = {}
    skipped = 0
    for j in kept:
        if j.query_kind == "digest":
            skipped += 1
            continue
        by_query.setdefault((j.query_kind, j.query), {})[j.result_id] = j.value  # latest wins
    stored = index.store.get_vectors(
        list(
            {r for results in by_query.values() for r in results}
            | {q for kind, q in by_query if kind == "record"}
        )
    )
    texts = [q for kind, q in by_query if kind == "text"]
    text_vectors = dict(zip(texts, index.embedder.embed_texts(texts), strict=True)) if texts else {}
    scores: list[float] = []
    recalls: dict[int, list[float]] = {k: [] for k in ks}
    counted = 0
    for (kind, query), results in by_query.items():
        vector = text_vectors.get(query) if kind == "text" else stored.get(query)
        ranked = [r for r in results if r in stored]
        if vector is None or not ranked or not any(results[r] > 0 for r in ranked):
            skipped += len(results)
            continue
        similarity = np.stack([stored[r] for r in ranked]) @ np.asarray(vector)
        order = [ranked[i] for i in np.argsort(-similarity, kind="stable")]
        gains = [1.0 if results[r] > 0 else 0.0 for r in order]
        scores.append(ndcg(gains))
        relevant = sum(gains)
        for k in ks:
            recalls[k].append(sum(gains[:k]) / relevant)
        counted += len(ranked)
    if not scores:
        return FeedbackReport(0, 0, skipped=skipped)
    return FeedbackReport(
        queries=len(scores),
        judgements=counted,
        ndcg_at_10=float(np.mean(scores)),
        recall={k: float(np.mean(v)) for k, v in recalls.items()},
        skipped=skipped,
    )
