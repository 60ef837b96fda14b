"""Near-duplicate detection at scale: the embedding and hash tiers on a million items.

    python bench/dedup.py [--vectors 1000000] [--previous] [--views]

Synthetic clustered unit vectors (a mixture of Gaussians on the sphere) with planted
near-duplicates: times the embedding tier's neighbour links on the full set, and an exact
all-pairs scan on a 20k subset as the baseline, extrapolated quadratically to the full
size; prints the ratio and the recall of the planted pairs. ``--previous`` also times, in
the same run, the neighbour search of the previous release (centroids found through an HNSW
graph, four times the square root of the count in clusters, 16 probed). Then the hash tier: random
64-bit hashes with planted near pairs, every pair within 8 bits, against a brute-force
search of a 50k subset. ``--views`` also times the view links ``duplicates`` adds (seven
views a vector: here the vector moved a little, the way a turned or cropped view moves),
against the embedding tier's own time in the same run. Quality on real photos:
bench/copydetect.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from pixseek.core.vectors import l2_normalize
from pixseek.jobs.dedup import components, embedding_links, hash_links
from pixseek.stores.knn import exact_neighbours, neighbours

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "caltech101"


def clustered(count: int, dim: int = 512, clusters: int = 5000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = l2_normalize(rng.normal(size=(clusters, dim)))
    members = rng.integers(0, clusters, count)
    out = np.empty((count, dim), np.float32)
    for start in range(0, count, 100_000):
        part = members[start : start + 100_000]
        noise = rng.normal(scale=0.04, size=(len(part), dim)).astype(np.float32)
        out[start : start + len(part)] = l2_normalize(centres[part] + noise)
    return out


def previous_neighbours(vectors: np.ndarray, k: int) -> np.ndarray:
    """The previous release's inverted-file search, for a same-run comparison."""
    import math

    import faiss

    from pixseek.stores.knn import rerank

    count, dim = vectors.shape
    lists = int(4 * math.sqrt(count))
    index = faiss.index_factory(
        dim, f"IVF{lists}_HNSW32,PQ{dim // 8}x4fs", faiss.METRIC_INNER_PRODUCT
    )
    inverted = faiss.extract_index_ivf(index)
    inverted.cp.niter = 5
    faiss.downcast_index(inverted.quantizer).hnsw.efSearch = 64
    sample = np.random.default_rng(0).choice(count, min(count, lists * 20), replace=False)
    index.train(vectors[np.sort(sample)])
    index.add(vectors)
    inverted.nprobe = 16
    found = np.empty((count, k), np.int64)
    for start in range(0, count, 2048):
        block = vectors[start : start + 2048]
        _, candidates = index.search(block, 3 * k)
        found[start : start + len(block)] = rerank(vectors, block, candidates.astype(np.int64), k)[
            0
        ]
    return found


def overlap(found: np.ndarray, vectors: np.ndarray, sample: np.ndarray) -> float:
    """The share of the exact 10 nearest neighbours found, over a sample of the vectors."""
    truth, _ = exact_neighbours(vectors[sample], vectors, found.shape[1])
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found[sample], truth, strict=True)])
    )


def view_tier(vectors: np.ndarray, seconds: float, threshold: float = 0.95) -> None:
    """The view links of seven views a vector, against the plain tier's ``seconds``."""
    from pixseek.imaging.views import COPY_VIEWS
    from pixseek.jobs.copy_views import KEPT_DTYPE, ViewVectors
    from pixseek.jobs.dedup import view_links

    count, dim = vectors.shape
    per = len(COPY_VIEWS)
    rng = np.random.default_rng(5)
    moved = np.empty((count * per, dim), KEPT_DTYPE)  # as duplicates holds them
    for start in range(0, count, 10_000):
        block = np.repeat(vectors[start : start + 10_000], per, axis=0)
        noise = rng.normal(scale=0.006, size=block.shape).astype(np.float32)
        moved[start * per : start * per + len(block)] = l2_normalize(block + noise)
    seen = ViewVectors(
        np.repeat(np.arange(count), per), np.tile(np.arange(per), count), moved, 0, 0
    )
    started = time.perf_counter()
    a, _, _, _ = view_links(seen, vectors, threshold, 10)
    taken = time.perf_counter() - started
    print(
        f"  view links of {count * per:,} views ({moved.nbytes / 2**30:.1f} GiB): {taken:.1f} s, "
        f"{taken / seconds:.1f}x the embedding tier's own {seconds:.1f} s; {len(a):,} links"
    )


def part_two(
    count: int, threshold: float = 0.95, previous: bool = False, views: bool = False
) -> None:
    vectors = clustered(count)
    rng = np.random.default_rng(1)
    rows = rng.permutation(count)
    planted, copy_rows = rows[: count // 100], rows[count // 100 : count // 50]
    noise = rng.normal(scale=0.006, size=(len(planted), vectors.shape[1]))
    vectors[copy_rows] = l2_normalize(vectors[planted] + noise)
    print(f"\nembedding tier on {count:,} clustered 512-d vectors, {len(planted):,} planted copies")
    started = time.perf_counter()
    a, b, _ = embedding_links(vectors, threshold, 10)
    labels = components(count, a, b)
    seconds = time.perf_counter() - started
    recall = float(np.mean(labels[copy_rows] == labels[planted]))
    involved = np.zeros(count, bool)
    involved[planted] = involved[copy_rows] = True
    precision = float(np.mean(involved[a] & involved[b])) if len(a) else 1.0
    if previous:
        started = time.perf_counter()
        old = previous_neighbours(vectors, 10)
        before = time.perf_counter() - started
        sample = np.random.default_rng(3).choice(count, 2000, replace=False)
        new = overlap(neighbours(vectors, 10)[0], vectors, sample)
        print(
            f"  previous release's neighbour search alone: {before:.1f} s "
            f"({before / seconds:.1f}x the whole embedding tier now); share of the exact 10 "
            f"nearest found: {overlap(old, vectors, sample):.3f} before, {new:.3f} now"
        )
    subset = vectors[:20_000]
    started = time.perf_counter()
    exact_neighbours(subset, subset, 11)
    baseline = time.perf_counter() - started
    extrapolated = baseline * (count / len(subset)) ** 2
    print(
        f"  pixseek duplicates (embedding tier): {seconds:.1f} s; planted pairs found "
        f"{recall:.4f}, links between planted pairs {precision:.4f}"
    )
    if views:
        view_tier(vectors, seconds, threshold)
    print(
        f"  all-pairs exact on 20k: {baseline:.1f} s -> {extrapolated:.0f} s extrapolated to "
        f"{count:,} ({extrapolated / seconds:.1f}x slower than pixseek)"
    )


def hash_tier(count: int, radius: int = 8) -> None:
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 2**63, count, dtype=np.uint64)
    planted = rng.choice(count, count // 100, replace=False)
    for position, row in enumerate(planted.tolist()):
        other = int(planted[(position + 1) % len(planted)])
        flips = rng.choice(64, size=position % (radius + 1), replace=False)
        codes[other] = codes[row] ^ np.uint64(sum(1 << int(f) for f in flips))
    print(f"\nhash tier on {count:,} 64-bit hashes, every pair within {radius} bits")
    started = time.perf_counter()
    a, _, _ = hash_links(codes, radius)
    seconds = time.perf_counter() - started
    subset = codes[:50_000]
    started = time.perf_counter()
    hash_links(subset, radius)  # brute force at this size
    baseline = time.perf_counter() - started
    extrapolated = baseline * (count / len(subset)) ** 2
    print(
        f"  pixseek hash tier: {seconds:.1f} s, {len(a):,} pairs; brute force on 50k: "
        f"{baseline:.1f} s -> {extrapolated:.0f} s extrapolated ({extrapolated / seconds:.1f}x)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--hashes", type=int, default=1_000_000)
    parser.add_argument("--previous", action="store_true", help="time the previous release too")
    parser.add_argument("--views", action="store_true", help="time the view links too")
    args = parser.parse_args()
    if args.vectors > 0:
        part_two(args.vectors, previous=args.previous, views=args.views)
    if args.hashes > 0:
        hash_tier(args.hashes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
