"""Neighbours of many vectors at once: the inverted-file path agrees with the exact one."""

from __future__ import annotations

import numpy as np

from pixseek.core.vectors import l2_normalize
from pixseek.stores.knn import exact_neighbours, ivf_neighbours, neighbours


def clustered(count: int, dim: int = 64) -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = l2_normalize(rng.normal(size=(count // 50, dim)))
    members = rng.integers(0, len(centres), count)
    return l2_normalize(centres[members] + rng.normal(scale=0.08, size=(count, dim))).astype(
        np.float32
    )


def test_inverted_file_finds_the_exact_neighbours() -> None:
    """Coded candidates re-ranked exactly: the scores are exact cosines and planted
    near-copies are each other's nearest neighbours. Among points of a cluster that are
    all about equally near each other the order is approximate (bench/dedup.py --previous
    compares the share of exact neighbours found with the previous release's search)."""
    rng = np.random.default_rng(1)
    vectors = clustered(6000, dim=128)
    sources, copies = np.arange(0, 600), np.arange(600, 1200)
    vectors[copies] = l2_normalize(vectors[sources] + rng.normal(scale=0.01, size=(600, 128)))
    found, scores = ivf_neighbours(vectors, 5)
    truth, _ = exact_neighbours(vectors, vectors, 5)
    assert found.shape == (6000, 5) and (found >= 0).all()
    recomputed = np.einsum("qkd,qd->qk", vectors[found], vectors)
    assert np.allclose(scores, recomputed, atol=1e-5)
    assert np.mean(found[copies, 1] == sources) >= 0.99
    overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(found, truth, strict=True)])
    assert overlap >= 0.6


def test_small_sets_are_exact_and_odd_dimensions_work() -> None:
    vectors = clustered(300, dim=33)
    found, scores = neighbours(vectors, 4)
    truth, _ = exact_neighbours(vectors, vectors, 4)
    assert (found == truth).all() and np.allclose(scores[:, 0], 1.0, atol=1e-5)
    coded, _ = ivf_neighbours(vectors, 4)  # 33 dimensions: no product codes, plain lists
    assert np.mean(coded[:, 1] == truth[:, 1]) >= 0.95


def test_other_queries_search_the_same_lists() -> None:
    """Views of images against the images (duplicates' view links): queries that are not
    the indexed vectors, beyond the exact size, find their planted near-copy."""
    from pixseek.stores.knn import neighbours_of

    rng = np.random.default_rng(2)
    vectors = clustered(6000, dim=128)
    queries = l2_normalize(vectors[:500] + rng.normal(scale=0.01, size=(500, 128)))
    found, scores = neighbours_of(queries.astype(np.float16), vectors, 3, exact_up_to=1000)
    assert found.shape == (500, 3) and np.mean(found[:, 0] == np.arange(500)) >= 0.99
    recomputed = np.einsum("qkd,qd->qk", vectors[found], queries.astype(np.float16))
    assert np.allclose(scores, recomputed, atol=1e-3)


def test_an_index_built_once_answers_one_query_at_a_time() -> None:
    """Match's search of the kept views: one query at a time against the same vectors.
    Beyond the exact size the inverted lists are built once, and each query finds its
    planted near-copy with its exact score; below it, the answer is exact."""
    from pixseek.stores.knn import Nearest

    rng = np.random.default_rng(3)
    vectors = clustered(6000, dim=128)
    queries = l2_normalize(vectors[:200] + rng.normal(scale=0.01, size=(200, 128)))
    built = Nearest(vectors, exact_up_to=1000)
    assert built.lists is not None
    answers = [built.search(query[None, :].astype(np.float32), 3) for query in queries]
    assert np.mean([found[0, 0] == n for n, (found, _) in enumerate(answers)]) >= 0.99
    found, scores = answers[0]
    assert np.allclose(scores[0], vectors[found[0]] @ queries[0], atol=1e-5)
    half = Nearest(vectors.astype(np.float16), exact_up_to=1000)  # kept views: float16
    assert half.lists is not None and half.lists.data.nbytes == vectors.nbytes // 2
    found_half = [half.search(query[None, :].astype(np.float32), 3)[0][0, 0] for query in queries]
    assert np.mean([f == n for n, f in enumerate(found_half)]) >= 0.99
    small = Nearest(vectors[:500])
    assert small.lists is None
    exact, _ = exact_neighbours(queries[:5], vectors[:500], 3)
    assert (small.search(queries[:5], 3)[0] == exact).all()
