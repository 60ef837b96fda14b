"""kNN classification at scale: labelled vectors in many classes, top-1 by a vote of the k
nearest, through pixseek's store (graph and records in memory) in batches, at the store's
graph-walk breadth and at others.

    python bench/classify.py [--vectors 1000000] [--classes 100000] [--queries 2000] [--k 10]

Each class is a cluster on the 512-d sphere; queries are noisy members. Prints the build
time, the time per query of the batched kNN vote against numpy exact kNN on the same
queries (the baseline, measured in the same run), and top-1 accuracy of both.
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path

import numpy as np

from pixseek.core.records import Record
from pixseek.core.vectors import l2_normalize
from pixseek.jobs import classify
from pixseek.jobs.classify import vote_pool
from pixseek.stores.knn import exact_neighbours, search_many
from pixseek.stores.lance import ann
from pixseek.stores.lance import store as lance_store
from pixseek.stores.registry import open_store

DIM = 512
BATCH = 50_000


def data(count: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = l2_normalize(rng.normal(size=(classes, DIM))).astype(np.float32)
    labels = rng.integers(0, classes, count)
    vectors = np.empty((count, DIM), np.float32)
    for start in range(0, count, BATCH):
        part = labels[start : start + BATCH]
        noise = rng.normal(scale=0.03, size=(len(part), DIM))
        vectors[start : start + len(part)] = l2_normalize(centres[part] + noise)
    return vectors, labels


def vote(labels: list[str]) -> str:
    return collections.Counter(labels).most_common(1)[0][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    vectors, labels = data(args.vectors, args.classes)
    rng = np.random.default_rng(1)
    picked = rng.integers(0, args.vectors, args.queries)
    noise = rng.normal(scale=0.03, size=(args.queries, DIM))
    queries = l2_normalize(vectors[picked] + noise).astype(np.float32)
    expected = [f"c{labels[i]}" for i in picked]

    started = time.perf_counter()
    indices, _ = exact_neighbours(queries, vectors, args.k)
    numpy_s = (time.perf_counter() - started) / args.queries
    numpy_top1 = [vote([f"c{labels[j]}" for j in row]) for row in indices]

    lance_store.ANN_FROM = 0
    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        store = open_store(str(Path(work) / "lance"), "classify", DIM)
        for start in range(0, args.vectors, BATCH):
            stop = min(start + BATCH, args.vectors)
            records = [
                Record(
                    id=f"v{i}",
                    kind="image",
                    image_id=f"v{i}",
                    path="",
                    width=0,
                    height=0,
                    label=f"c{labels[i]}",
                )
                for i in range(start, stop)
            ]
            store.upsert(records, vectors[start:stop])
        store.persist()
        build = time.perf_counter() - started
        search_many(store, queries, args.k)  # load what the store keeps in memory
        rows = []
        default = ann.EF_SEARCH
        for ef in sorted({default, 128, 256, 512}):
            ann.EF_SEARCH = ef
            started = time.perf_counter()
            hits = search_many(store, queries, args.k)
            top1 = [vote([r.label or "" for r, _ in found]) for found in hits]
            seconds = (time.perf_counter() - started) / args.queries
            rows.append((ef, ef == default, seconds, top1))
        ann.EF_SEARCH = default
        started = time.perf_counter()
        found = search_many(store, queries, vote_pool(args.k))
        job = [classify.vote(hits, args.k).label or "" for hits in found]
        job_s = (time.perf_counter() - started) / args.queries

    def accuracy(predicted: list[str]) -> float:
        return float(np.mean([p == e for p, e in zip(predicted, expected, strict=True)]))

    print(
        f"{args.vectors:,} vectors in {args.classes:,} classes, "
        f"{args.queries:,} queries, k={args.k}"
    )
    print(f"{'method':<28} {'ms/query':>9} {'vs numpy':>9} {'top-1 accuracy':>15}")
    print(
        f"{'numpy exact kNN (baseline)':<28} {numpy_s * 1000:9.3f} {1.0:8.2f}x "
        f"{accuracy(numpy_top1):15.3f}"
    )
    for ef, is_default, seconds, top1 in rows:
        name = f"pixseek store, breadth {ef}" + (" *" if is_default else "")
        print(f"{name:<28} {seconds * 1000:9.3f} {seconds / numpy_s:8.2f}x {accuracy(top1):15.3f}")
    name = f"pixseek classify (pool {vote_pool(args.k)})"
    print(f"{name:<28} {job_s * 1000:9.3f} {job_s / numpy_s:8.2f}x {accuracy(job):15.3f}")
    print(f"(* the store's graph-walk breadth; build {build:.0f} s)")


if __name__ == "__main__":
    main()
