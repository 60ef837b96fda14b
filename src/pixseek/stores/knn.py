"""Nearest neighbours of many vectors at once, for jobs that compare a collection with itself.

Below :data:`EXACT_UP_TO` vectors the answer is exact (matrix products in blocks,
so memory stays bounded); above it an inverted-file index (faiss IVF) probes only
the closest clusters, which turns the quadratic scan of a million vectors into
seconds per hundred thousand. Vectors are unit rows, so inner product is cosine.
"""

from __future__ import annotations

import math
import os
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from pixseek.core.filters import Filter
from pixseek.core.records import Record
from pixseek.core.vectors import Vectors
from pixseek.stores.base import ScoredRecords, VectorStore

EXACT_UP_TO = 50_000
BLOCK = 2048
Neighbours = tuple[NDArray[np.int64], NDArray[np.float32]]


def neighbours(
    vectors: Vectors, k: int, exact_up_to: int = EXACT_UP_TO, probes: int = 16
) -> Neighbours:
    """For each row, the ``k`` most similar rows (itself included), best first."""
    k = min(k, len(vectors))
    if len(vectors) <= exact_up_to:
        return exact_neighbours(vectors, vectors, k)
    return ivf_neighbours(vectors, k, probes)


def load_all(store: VectorStore, flt: Filter | None = None) -> tuple[list[Record], Vectors]:
    """Every matching record with its vector, in memory: for jobs that compare a whole
    collection (or a part of it) with itself."""
    records: list[Record] = []
    parts: list[Vectors] = []
    for batch, vectors in store.scan(flt, with_vectors=True):
        assert vectors is not None
        records += batch
        parts.append(vectors)
    dim = parts[0].shape[1] if parts else store.dim
    return records, np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)


def exact_neighbours(queries: Vectors, vectors: Vectors, k: int) -> Neighbours:
    """The exact answer, ``BLOCK`` queries at a time."""
    k = min(k, len(vectors))
    indices = np.empty((len(queries), k), np.int64)
    scores = np.empty((len(queries), k), np.float32)
    for start in range(0, len(queries), BLOCK):
        similarity = queries[start : start + BLOCK] @ vectors.T
        top = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        top_scores = np.take_along_axis(similarity, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        indices[start : start + BLOCK] = np.take_along_axis(top, order, axis=1)
        scores[start : start + BLOCK] = np.take_along_axis(top_scores, order, axis=1)
    return indices, scores


def ivf_neighbours(vectors: Vectors, k: int, probes: int = 16) -> Neighbours:
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    count, dim = data.shape
    lists = max(1, int(4 * math.sqrt(count)))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, lists, faiss.METRIC_INNER_PRODUCT)
    sample = np.random.default_rng(0).choice(count, min(count, lists * 40), replace=False)
    index.train(data[np.sort(sample)])
    index.add(data)
    index.nprobe = min(probes, lists)
    scores, indices = index.search(data, k)
    return indices.astype(np.int64), scores.astype(np.float32)


def search_many(
    store: VectorStore, queries: Vectors, k: int, flt: Filter | None = None
) -> list[ScoredRecords]:
    """The ``k`` nearest records of each query, in one call where the store answers batches
    from memory (LanceDB past its graph threshold: about a tenth of a millisecond a query),
    one search per query otherwise. For jobs: kNN classification, near-duplicates."""
    if isinstance(store, BatchSearch):
        return store.search_many(queries, k, flt)
    return [store.search(query, k, flt) for query in queries]


@runtime_checkable
class BatchSearch(Protocol):
    def search_many(
        self, vectors: Vectors, k: int, flt: Filter | None = None
    ) -> list[ScoredRecords]: ...
