"""Nearest neighbours of many vectors at once, for jobs that compare a collection with itself.

Below :data:`EXACT_UP_TO` vectors the answer is exact (faiss's brute-force kernel in
blocks, so memory stays bounded). Above it, an inverted-file index probes only the
closest clusters: the vectors are coded as 4-bit product-quantizer codes scanned with
SIMD lookups (faiss "fast scan"), a few times ``k`` candidates per vector are found that
way, and those are re-ranked exactly against the vectors themselves. Training is cheap
(a sample of 20 vectors per cluster, five k-means rounds) and no second copy of the vectors
is made. The clusters' centroids are compared with every vector by one matrix product per
block (BLAS): at a million vectors that took a third of the time a small HNSW graph over the
centroids took to place each vector, and finding the clusters was most of the job. Vectors are
unit rows, so inner product is cosine.
"""

from __future__ import annotations

import math
import os
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from pixseek.core.filters import Filter
from pixseek.core.records import Record
from pixseek.core.vectors import Vectors
from pixseek.stores.base import ScoredRecords, VectorStore

EXACT_UP_TO = 50_000
BLOCK = 2048
LISTS_PER_ROOT = 2  # clusters: this many times the square root of the vector count
PROBES = 24  # clusters searched per vector
KMEANS_ROUNDS = 5
TRAIN_PER_LIST = 20  # k-means sample per cluster
CANDIDATES = 3  # candidates per wanted neighbour, re-ranked exactly
RERANK_BLOCK = 2048  # vectors whose candidates are gathered at a time
FEW_QUERIES = 16  # answered on one thread
# queries may be float16 (the kept views): each block is made float32 as it is searched
Queries = NDArray[np.floating[Any]]
ADD_BLOCK = 65_536  # float16 rows converted for faiss at a time
Ints = NDArray[np.int64]
Neighbours = tuple[Ints, NDArray[np.float32]]


def neighbours(
    vectors: Vectors, k: int, exact_up_to: int = EXACT_UP_TO, probes: int = PROBES
) -> Neighbours:
    """For each row, the ``k`` most similar rows (itself included), best first."""
    k = min(k, len(vectors))
    if len(vectors) <= exact_up_to:
        return exact_neighbours(vectors, vectors, k)
    return ivf_neighbours(vectors, k, probes)


def neighbours_of(
    queries: Queries, vectors: Vectors, k: int, exact_up_to: int = EXACT_UP_TO
) -> Neighbours:
    """For each query, the ``k`` most similar rows of ``vectors``, best first: exact up to
    ``exact_up_to`` rows, the inverted-file search of :func:`ivf_neighbours` beyond."""
    k = min(k, len(vectors))
    if len(vectors) <= exact_up_to:
        return exact_neighbours(queries, vectors, k)
    return ivf_neighbours(vectors, k, queries=queries)


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


def exact_neighbours(queries: Queries, vectors: Vectors, k: int) -> Neighbours:
    """The exact answer (faiss's brute-force kernel, in blocks of queries so that memory
    stays bounded). A query or a few are answered on one thread: numpy's BLAS threads,
    woken for a one-row product next to faiss's threads on a busy machine, took 5 ms
    for what takes 0.03 ms."""
    import faiss

    k = min(k, len(vectors))
    if k == 0:
        return np.empty((len(queries), 0), np.int64), np.empty((len(queries), 0), np.float32)
    base = np.ascontiguousarray(vectors, dtype=np.float32)
    indices = np.empty((len(queries), k), np.int64)
    scores = np.empty((len(queries), k), np.float32)
    faiss.omp_set_num_threads(1 if len(queries) <= FEW_QUERIES else os.cpu_count() or 1)
    for start in range(0, len(queries), BLOCK):
        block = np.ascontiguousarray(queries[start : start + BLOCK], dtype=np.float32)
        found_scores, found = faiss.knn(block, base, k, metric=faiss.METRIC_INNER_PRODUCT)
        indices[start : start + BLOCK] = found
        scores[start : start + BLOCK] = found_scores
    return indices, scores


def ivf_neighbours(
    vectors: Vectors, k: int, probes: int = PROBES, queries: Queries | None = None
) -> Neighbours:
    """Neighbours among ``vectors`` of ``queries`` (by default the vectors themselves)."""
    return InvertedLists(vectors, probes).search(vectors if queries is None else queries, k)


class InvertedLists:
    """The inverted-file index of the module's docstring over ``vectors`` (kept, not
    copied: float16 rows stay float16, half the memory, and are re-ranked as they are),
    built once and searched as often as wanted: candidates from the probed clusters'
    fast-scan codes, re-ranked exactly."""

    def __init__(self, vectors: NDArray[np.floating], probes: int = PROBES) -> None:
        import faiss

        faiss.omp_set_num_threads(os.cpu_count() or 1)
        half = vectors.dtype == np.float16
        self.data: NDArray[np.floating[Any]] = np.ascontiguousarray(
            vectors, dtype=np.float16 if half else np.float32
        )
        count, dim = self.data.shape
        lists = max(1, int(LISTS_PER_ROOT * math.sqrt(count)))
        codes = f"PQ{dim // 8}x4fs" if dim % 8 == 0 else "Flat"
        self.index = faiss.index_factory(dim, f"IVF{lists},{codes}", faiss.METRIC_INNER_PRODUCT)
        inverted: Any = faiss.extract_index_ivf(self.index)
        inverted.cp.niter = KMEANS_ROUNDS
        inverted.cp.min_points_per_centroid = TRAIN_PER_LIST  # sampled so on purpose: no warning
        sampled = min(count, lists * TRAIN_PER_LIST)
        sample = np.random.default_rng(0).choice(count, sampled, replace=False)
        self.index.train(self.data[np.sort(sample)].astype(np.float32))
        for start in range(0, count, ADD_BLOCK):  # faiss takes float32: a block at a time
            self.index.add(np.ascontiguousarray(self.data[start : start + ADD_BLOCK], np.float32))
        inverted.nprobe = min(probes, lists)

    def search(self, queries: Queries, k: int) -> Neighbours:
        import faiss

        faiss.omp_set_num_threads(1 if len(queries) <= FEW_QUERIES else os.cpu_count() or 1)
        count = len(self.data)
        k = min(k, count)
        wanted = min(count, k * CANDIDATES)
        indices = np.empty((len(queries), k), np.int64)
        scores = np.empty((len(queries), k), np.float32)
        for start in range(0, len(queries), RERANK_BLOCK):  # a block at a time: no copy
            block = np.ascontiguousarray(queries[start : start + RERANK_BLOCK], dtype=np.float32)
            _, candidates = self.index.search(block, wanted)
            found, exact = rerank(self.data, block, candidates.astype(np.int64), k)
            indices[start : start + len(block)] = found
            scores[start : start + len(block)] = np.where(np.isfinite(exact), exact, -1.0)
        return indices, scores


class Nearest:
    """Repeated searches among the same vectors: exact up to ``exact_up_to`` rows (a
    matrix product costs nothing to prepare), :class:`InvertedLists` beyond (built once:
    a scan of every row per query is what it saves). Float16 vectors are kept as they
    are beyond (half the memory); below, a float32 copy is small and scans at BLAS speed."""

    def __init__(self, vectors: NDArray[np.floating], exact_up_to: int = EXACT_UP_TO) -> None:
        self.lists = InvertedLists(vectors) if len(vectors) > exact_up_to else None
        self.vectors = vectors if self.lists else np.ascontiguousarray(vectors, np.float32)

    def search(self, queries: Vectors, k: int) -> Neighbours:
        if self.lists is None:
            return exact_neighbours(queries, self.vectors, k)
        return self.lists.search(queries, k)


def rerank(
    data: NDArray[np.floating[Any]], queries: Vectors, candidates: Ints, k: int
) -> Neighbours:
    """The ``k`` best candidates of each query by exact cosine against ``data`` (an array
    or a memory map); where fewer were found, index -1 and score -inf."""
    valid = candidates >= 0
    safe = np.where(valid, candidates, 0)
    exact = np.empty(candidates.shape, np.float32)
    for column in range(candidates.shape[1]):  # one candidate per query at a time: the
        # gathered rows stay in cache (gathering all at once is four times slower)
        exact[:, column] = np.einsum("qd,qd->q", data[safe[:, column]], queries)
    exact = np.where(valid, exact, -np.inf).astype(np.float32)
    order = np.argsort(-exact, axis=1, kind="stable")[:, :k]
    best = np.take_along_axis(exact, order, axis=1)
    chosen = np.where(np.isfinite(best), np.take_along_axis(candidates, order, axis=1), -1)
    return chosen, best


def search_many(
    store: VectorStore, queries: Vectors, k: int, flt: Filter | None = None
) -> list[ScoredRecords]:
    """The ``k`` nearest records of each query, in one call where the store answers batches
    from memory (the Lance store: 0.27 ms a query at a million rows on 2 cores, against
    0.96 ms for one query at a time), one search per query otherwise. For jobs: kNN
    classification, near-duplicates, match's views."""
    if isinstance(store, BatchSearch):
        return store.search_many(queries, k, flt)
    return [store.search(query, k, flt) for query in queries]


@runtime_checkable
class BatchSearch(Protocol):
    def search_many(
        self, vectors: Vectors, k: int, flt: Filter | None = None
    ) -> list[ScoredRecords]: ...
