"""Search latency and recall by backend: numpy exact (baseline), raw hnswlib (the graph alone),
LanceDB exact, pixseek's LanceDB store end to end (graph and records in memory), the same
right after another process wrote 1,000 rows, and Milvus (HNSW), on clustered unit vectors.

    python bench/search.py [--sizes 100000,1000000] [--queries 200] [--no-milvus] [--no-raw]

Vectors are a mixture of Gaussians on the 512-d sphere (like real embeddings, not uniform
noise). For each backend: build time (insert + index), the resident memory the process
gained, p50/p99 latency of one top-10 query at a time, recall@10 against exact, and filtered
search at 1% and 10% selectivity (recall, and the share of queries that got 10 hits).
Latencies are printed as ratios to numpy exact and to raw hnswlib, measured in the same run;
so is the memory-bandwidth floor of a full scan (the time to read every vector once), and the
store's batched search per query. Milvus runs as a local server started here.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
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
from pixseek.stores.knn import search_many
from pixseek.stores.lance import ann
from pixseek.stores.lance import store as lance_store
from pixseek.stores.milvus.store import SEARCH_BATCH
from pixseek.stores.registry import open_store

DIM = 512
WRITTEN = 1_000  # rows another process writes before the "after a write" row
WRITER = """
import sys
import numpy as np
from pixseek.core.records import Record
from pixseek.stores.registry import open_store
location, table, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
vectors = np.load(sys.argv[4])
records = [
    Record(id=f"w{i}", kind="image", image_id=f"w{i}", path="", width=0, height=0, label="rest")
    for i in range(len(vectors))
]
open_store(location, table, vectors.shape[1]).upsert(records, vectors)
"""


# A fresh process: builds the graph (persist) and reports its peak resident memory
# (VmHWM: ru_maxrss would carry over the benchmark's own peak across fork and exec).
BUILDER = """
import sys
from pixseek.stores.lance import ann
from pixseek.stores.lance import store as lance_store
from pixseek.stores.milvus.store import SEARCH_BATCH
from pixseek.stores.registry import open_store
lance_store.ANN_FROM = 0
open_store(sys.argv[1], sys.argv[2], int(sys.argv[3])).persist()
print(next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM")))
"""
# A fresh process: what opening the table and answering one search keeps resident,
# beyond the libraries themselves.
READER = """
import resource, sys
import faiss, lance, numpy as np
from pixseek.stores.registry import open_store
def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()
before = rss()
store = open_store(sys.argv[1], sys.argv[2], int(sys.argv[3]))
store.search(np.load(sys.argv[4])[0], 10)
print(rss() - before)
"""


def in_process(script: str, *args: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], check=True, capture_output=True, text=True
    )
    return int(done.stdout.split()[-1])


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
    """Resident memory now (not the peak): what a backend keeps once it is built."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


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


def make_records(count: int, tags: np.ndarray) -> list[Record]:
    return [
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


def bandwidth_floor_ms(vectors: np.ndarray) -> float:
    """Reading every vector once, on every core: no full scan can be faster. A BLAS
    matrix-vector product is bound by memory bandwidth, not arithmetic (a plain sum, on one
    core, was slower than the exact search it should bound)."""
    ones = np.ones(vectors.shape[1], np.float32)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        vectors @ ones
        times.append((time.perf_counter() - started) * 1000)
    return min(times)


def batched(store: Any, queries: np.ndarray, truth: list[list[int]], index: Any) -> None:
    """The store's batched search per query, at its graph walk's breadth (EF_SEARCH, the
    same for one query and for batches) and at narrower ones, the cost of that choice."""
    default = ann.EF_SEARCH
    search_many(store, queries, 10)  # a first batch pays for one-time work
    try:
        for ef in sorted({32, default, 64, 128}):
            ann.EF_SEARCH = ef
            started = time.perf_counter()
            batch = search_many(store, queries, 10)
            per_query = (time.perf_counter() - started) * 1000 / len(queries)
            found = [[index[r.id] for r, _ in hits] for hits in batch]
            mark = " (default)" if ef == default else ""
            print(
                f"{'  batched, per query':<22} {'':>8} {'':>9} {per_query:8.3f} "
                f"({len(queries)} queries in one call, walk breadth {ef}{mark}, "
                f"recall@10 {recall(found, truth):.3f})"
            )
    finally:
        ann.EF_SEARCH = default


def run(count: int, queries_n: int, milvus: str | None, raw: bool) -> None:
    vectors = clustered(count)
    tags = labels(count)
    rng = np.random.default_rng(9)
    queries = l2_normalize(
        vectors[rng.integers(0, count, queries_n)] + rng.normal(scale=0.02, size=(queries_n, DIM))
    ).astype(np.float32)
    masks = {"1%": tags == "one", "10%": tags == "ten"}
    written = clustered(WRITTEN, seed=5)

    def numpy_search(
        query: np.ndarray, mask: np.ndarray | None = None, base: np.ndarray = vectors
    ) -> list[int]:
        scores = base @ query
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        top = np.argpartition(-scores, 10)[:10]
        return [int(i) for i in top[np.argsort(-scores[top])] if np.isfinite(scores[i])]

    truth, base_times = timed(numpy_search, queries)
    filtered_truth = {
        name: timed(lambda q, m=m: numpy_search(q, m), queries)[0] for name, m in masks.items()
    }
    grown_vectors = np.concatenate([vectors, written])
    grown_masks = {n: np.concatenate([m, np.zeros(WRITTEN, bool)]) for n, m in masks.items()}
    truth_after = [numpy_search(q, base=grown_vectors) for q in queries]
    filtered_after = {
        n: [numpy_search(q, m, grown_vectors) for q in queries] for n, m in grown_masks.items()
    }
    base_p50 = statistics.median(base_times)
    floor = bandwidth_floor_ms(vectors)
    print(f"\n{count:,} vectors x {DIM}, {queries_n} queries")
    print(f"memory-bandwidth floor of a full scan (read every vector once): {floor:.2f} ms")
    header = f"{'backend':<22} {'build s':>8} {'kept MiB':>9} {'p50 ms':>8} {'p99 ms':>8} "
    print(
        header + f"{'vs numpy':>9} {'vs hnswlib':>11} {'recall@10':>10} {'1%: recall':>11} "
        f"{'full':>5} {'10%: recall':>12} {'full':>5}"
    )
    raw_p50: float | None = None

    def line(name: str, build: str, grown: str, times: list[float], rest: str) -> None:
        p50 = statistics.median(times)
        versus_raw = f"{p50 / raw_p50:10.2f}x" if raw_p50 else f"{'-':>11}"
        print(
            f"{name:<22} {build:>8} {grown:>9} {p50:8.3f} {np.percentile(times, 99):8.3f} "
            f"{p50 / base_p50:8.2f}x {versus_raw} {rest}"
        )

    line(
        "numpy exact",
        "-",
        "-",
        base_times,
        f"{1.0:10.3f} {1.0:11.3f} {1.0:5.2f} " * 1 + f"{1.0:12.3f} {1.0:5.2f}",
    )
    if raw:
        import hnswlib

        before = rss_mib()
        started = time.perf_counter()
        graph = hnswlib.Index(space="ip", dim=DIM)
        graph.init_index(max_elements=count, ef_construction=ann.EF_CONSTRUCTION, M=ann.M)
        graph.add_items(vectors, np.arange(count))
        graph.set_ef(ann.EF_SEARCH)
        graph.set_num_threads(1)
        build = time.perf_counter() - started
        found, times = timed(lambda q: [int(i) for i in graph.knn_query(q, k=10)[0][0]], queries)
        raw_p50 = statistics.median(times)
        line(
            "raw hnswlib (graph)",
            f"{build:.1f}",
            f"{rss_mib() - before:.0f}",
            times,
            f"{recall(found, truth):10.3f} {'-':>11} {'-':>5} {'-':>12} {'-':>5}",
        )
        del graph
    records = make_records(count, tags)
    backends: list[tuple[str, str, int]] = []
    with tempfile.TemporaryDirectory() as work:
        backends.append(("lance exact", str(Path(work) / "exact"), count + 1))
        backends.append(("pixseek store (lance)", str(Path(work) / "ann"), 0))
        if milvus:
            backends.append(("milvus hnsw", milvus, 0))
        for name, location, ann_from in backends:
            lance_store.ANN_FROM = ann_from
            before = rss_mib()
            started = time.perf_counter()
            table = f"bench_{count}"
            store = open_store(location, table, DIM)
            for start in range(0, count, 50_000):
                store.upsert(records[start : start + 50_000], vectors[start : start + 50_000])
            build_peak = None
            if name.startswith("pixseek"):  # the graph is built by a process of its own
                build_peak = in_process(BUILDER, location, table, str(DIM))
                store.refresh()
            else:
                store.persist()
            build = time.perf_counter() - started
            index = {f"v{i}": i for i in range(count)}
            index.update({f"w{i}": count + i for i in range(WRITTEN)})

            def search(
                query: np.ndarray, flt: Filter | None = None, store: Any = store, index: Any = index
            ) -> list[int]:
                return [index[r.id] for r, _ in store.search(query, 10, flt)]

            search(queries[0])  # warm up (loads what the store keeps in memory)
            grown = f"{rss_mib() - before:.0f}"

            def measure(
                label: str,
                answers: list[list[int]],
                filtered: dict[str, list[list[int]]],
                build: float = build,
                grown: str = grown,
            ) -> None:
                found, times = timed(search, queries)
                parts = [f"{recall(found, answers):10.3f}"]
                for tag, key in (("one", "1%"), ("ten", "10%")):
                    hits, _ = timed(lambda q, t=tag: search(q, Filter.where({"label": t})), queries)
                    full = float(np.mean([len(h) == 10 for h in hits]))
                    width = 11 if key == "1%" else 12
                    parts.append(f"{recall(hits, filtered[key]):{width}.3f} {full:5.2f}")
                line(label, f"{build:.1f}", grown, times, " ".join(parts))

            measure(name, truth, filtered_truth)
            if build_peak is not None:
                query_path = str(Path(work) / "query.npy")
                np.save(query_path, queries[:1])
                reader = in_process(READER, location, table, str(DIM), query_path)
                print(
                    f"{'  memory':<22} a reader process keeps {reader / 2**20:.0f} MiB = "
                    f"{reader / count:.0f} bytes a vector (graph, codes, columns, row maps); "
                    f"the process that built the graph peaked at {build_peak / 2**30:.2f} GiB"
                )
            if name.startswith("pixseek"):
                batched(store, queries, truth, index)
                path = Path(work) / "written.npy"
                np.save(path, written)
                subprocess.run(
                    [sys.executable, "-c", WRITER, location, table, str(count), str(path)],
                    check=True,
                )
                store.refresh()
                started = time.perf_counter()
                search(queries[0])
                catch_up = (time.perf_counter() - started) * 1000
                measure(f"  after {WRITTEN:,} written", truth_after, filtered_after)
                print(f"{'  (first search, catching up)':<22} {catch_up:.1f} ms")
            if name.startswith("milvus"):
                _, alone = timed(search, queries)  # the baseline: one request a query
                started = time.perf_counter()
                batch = search_many(store, queries, 10)  # one request a SEARCH_BATCH
                per_query = (time.perf_counter() - started) * 1000 / len(queries)
                found = [[index[r.id] for r, _ in hits] for hits in batch]
                print(
                    f"{'  batched, per query':<22} {'':>8} {'':>9} {per_query:8.3f} "
                    f"({len(queries)} queries, {SEARCH_BATCH} a request; "
                    f"{float(np.mean(alone)) / per_query:.1f}x one at a time; "
                    f"recall@10 {recall(found, truth):.3f})"
                )
                store.drop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--no-milvus", action="store_true")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw hnswlib row")
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
            run(size, args.queries, milvus, not args.no_raw)
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
