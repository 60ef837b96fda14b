"""Search latency and recall by backend: numpy exact (baseline), LanceDB exact, LanceDB with
pixseek's HNSW graph, and Milvus (HNSW), on clustered unit vectors.

    python bench/search.py [--sizes 100000,1000000] [--queries 200] [--no-milvus]

Vectors are a mixture of Gaussians on the 512-d sphere (like real embeddings, not uniform
noise). For each backend: build time (insert + index), the resident memory the process
gained, p50/p99 latency of one top-10 query at a time, recall@10 against exact, and filtered
search at 1% and 10% selectivity (recall, and the share of queries that got 10 hits).
Numpy exact is the baseline of the latency ratios; Milvus runs as a local server started here.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pixseek.core.filters import Filter
from pixseek.core.records import Record
from pixseek.core.vectors import l2_normalize
from pixseek.stores.lance import store as lance_store
from pixseek.stores.registry import open_store

DIM = 512


def clustered(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = l2_normalize(rng.normal(size=(max(100, count // 200), DIM)))
    members = rng.integers(0, len(centres), count)
    out = np.empty((count, DIM), np.float32)
    for start in range(0, count, 100_000):
        part = members[start : start + 100_000]
        out[start : start + len(part)] = l2_normalize(
            centres[part] + rng.normal(scale=0.05, size=(len(part), DIM))
        )
    return out


def labels(count: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    draw = rng.random(count)
    return np.where(draw < 0.01, "one", np.where(draw < 0.11, "ten", "rest"))


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(
    search: Callable[[np.ndarray], list[int]], queries: np.ndarray
) -> tuple[list[list[int]], list[float]]:
    results, times = [], []
    for query in queries:
        started = time.perf_counter()
        results.append(search(query))
        times.append((time.perf_counter() - started) * 1000)
    return results, times


def recall(found: list[list[int]], truth: list[list[int]]) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / max(len(t), 1) for f, t in zip(found, truth, strict=True)])
    )


def run(count: int, queries_n: int, milvus: str | None) -> None:
    vectors = clustered(count)
    tags = labels(count)
    rng = np.random.default_rng(9)
    queries = l2_normalize(
        vectors[rng.integers(0, count, queries_n)] + rng.normal(scale=0.02, size=(queries_n, DIM))
    )
    masks = {"1%": tags == "one", "10%": tags == "ten"}

    def numpy_search(query: np.ndarray, mask: np.ndarray | None = None) -> list[int]:
        scores = vectors @ query
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        top = np.argpartition(-scores, 10)[:10]
        return [int(i) for i in top[np.argsort(-scores[top])] if np.isfinite(scores[i])]

    truth, base_times = timed(numpy_search, queries)
    filtered_truth = {
        name: timed(lambda q, m=m: numpy_search(q, m), queries)[0] for name, m in masks.items()
    }
    base_p50 = statistics.median(base_times)
    print(f"\n{count:,} vectors x {DIM}, {queries_n} queries")
    header = f"{'backend':<16} {'build s':>8} {'+RSS MiB':>9} {'p50 ms':>8} {'p99 ms':>8} "
    print(
        header + f"{'vs numpy':>9} {'recall@10':>10} {'1%: recall':>11} {'full':>5} "
        f"{'10%: recall':>12} {'full':>5}"
    )
    p99 = np.percentile(base_times, 99)
    print(
        f"{'numpy exact':<16} {'-':>8} {'-':>9} {base_p50:8.2f} {p99:8.2f} "
        f"{1.0:8.2f}x {1.0:10.3f} {1.0:11.3f} {1.0:5.2f} {1.0:12.3f} {1.0:5.2f}"
    )
    records = [
        Record(
            id=f"v{i}",
            kind="image",
            image_id=f"v{i}",
            path="",
            width=0,
            height=0,
            label=str(tags[i]),
        )
        for i in range(count)
    ]
    backends: list[tuple[str, str, int]] = []
    with tempfile.TemporaryDirectory() as work:
        backends.append(("lance exact", str(Path(work) / "exact"), count + 1))
        backends.append(("lance + hnsw", str(Path(work) / "ann"), 0))
        if milvus:
            backends.append(("milvus hnsw", milvus, 0))
        for name, location, ann_from in backends:
            lance_store.ANN_FROM = ann_from
            before = rss_mib()
            started = time.perf_counter()
            store = open_store(location, f"bench_{count}", DIM)
            for start in range(0, count, 50_000):
                store.upsert(records[start : start + 50_000], vectors[start : start + 50_000])
            store.persist()
            build = time.perf_counter() - started
            grown = rss_mib() - before
            index = {f"v{i}": i for i in range(count)}

            def search(
                query: np.ndarray, flt: Filter | None = None, store: Any = store, index: Any = index
            ) -> list[int]:
                return [index[r.id] for r, _ in store.search(query, 10, flt)]

            search(queries[0])  # warm up
            found, times = timed(search, queries)
            row = [
                f"{name:<16} {build:8.1f} {grown:9.0f} {statistics.median(times):8.2f} "
                f"{np.percentile(times, 99):8.2f} {statistics.median(times) / base_p50:8.2f}x "
                f"{recall(found, truth):10.3f}"
            ]
            for label, key in (("one", "1%"), ("ten", "10%")):
                hits, _ = timed(
                    lambda q, lab=label: search(q, Filter.where({"label": lab})), queries
                )
                full = float(np.mean([len(h) == 10 for h in hits]))
                row.append(
                    f"{recall(hits, filtered_truth[key]):11.3f} {full:5.2f}"
                    if key == "1%"
                    else f"{recall(hits, filtered_truth[key]):12.3f} {full:5.2f}"
                )
            print(" ".join(row))
            if name.startswith("milvus"):
                store.drop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--no-milvus", action="store_true")
    args = parser.parse_args()
    milvus = None
    server = None
    if not args.no_milvus:
        from milvus import default_server

        server = default_server
        server.set_base_dir(tempfile.mkdtemp(prefix="pixseek-milvus-"))
        server.start()
        milvus = f"milvus://127.0.0.1:{server.listen_port}"
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            run(size, args.queries, milvus)
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
