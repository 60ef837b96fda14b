"""Ingest throughput by runtime and precision, against torch eager, in one run.

    python bench/ingest.py [--limit 1000] [--data ../shared/data/caltech101]

Indexes a fixed subset of Caltech-101 (the first N paths of train.txt) with a
randomly initialised model of the exact ViT-B/32 geometry, once per variant,
through the real ingest pipeline (decode, preprocess, embed, write). Prints
images/s, the speed-up over the torch-eager fp32 baseline measured in this same
run, and the cosine similarity of each variant's stored vectors to the
baseline's (mean and minimum). One-time ONNX export cost is reported apart.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pixseek.collection.collection import open_collection
from pixseek.demo.factory import ClipShape, build_clip
from pixseek.ingest import FolderSource, IngestOptions, ingest
from pixseek.models import EmbedderOptions, load_embedder

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "caltech101"
VARIANTS = [("torch", "fp32"), ("onnx", "fp32"), ("onnx", "int8")]


def subset(data: Path, limit: int, work: Path) -> Path:
    """Symlink a fixed subset into one folder, so every variant reads the same files."""
    lines = (data / "train.txt").read_text().split()
    folder = work / "images"
    for index, relative in enumerate(sorted(lines)[:limit]):
        target = folder / relative.replace("/", "__")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(data / "101_ObjectCategories" / relative, target)
        del index
    return folder


def vectors_by_path(root: Path) -> dict[str, np.ndarray]:
    collection = open_collection(root)
    found: dict[str, np.ndarray] = {}
    for records, vectors in collection.index().store.scan(with_vectors=True):
        assert vectors is not None
        found.update({r.path: v for r, v in zip(records, vectors, strict=True)})
    return found


def run_variant(model: Path, runtime: str, precision: str, images: Path, work: Path) -> dict:
    started = time.perf_counter()
    embedder = load_embedder(
        EmbedderOptions(model=str(model), runtime=runtime, precision=precision, batch_size=32)
    )
    load_seconds = time.perf_counter() - started
    root = work / f"col-{runtime}-{precision}"
    collection = open_collection(root, embedder=embedder, create=True)
    started = time.perf_counter()
    report = ingest(collection, FolderSource((images,)), IngestOptions(batch_size=64))
    seconds = time.perf_counter() - started
    return {
        "variant": f"{runtime}-{precision}",
        "images": report.indexed,
        "failed": report.failed,
        "seconds": seconds,
        "images_per_s": report.indexed / seconds,
        "load_or_export_s": load_seconds,
        "root": root,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if not (args.data / "train.txt").is_file():
        print(f"bench/ingest.py needs Caltech-101 at {args.data}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="pixseek-bench-"))
    try:
        images = subset(args.data, args.limit, work)
        model = build_clip(work / "vit-b32-random", ClipShape.vit_b32())
        print(f"{args.limit} Caltech-101 photos, random ViT-B/32, {os.cpu_count()} CPU cores")
        results = [run_variant(model, rt, pr, images, work) for rt, pr in VARIANTS]
        reference = vectors_by_path(results[0]["root"])
        baseline = results[0]["images_per_s"]
        header = f"{'variant':<12} {'img/s':>8} {'speed-up':>9} {'cos mean':>9} {'cos min':>9}"
        print(header + f" {'load/export s':>14}")
        for result in results:
            vectors = vectors_by_path(result["root"])
            common = sorted(set(vectors) & set(reference))
            cosine = np.array([float(vectors[p] @ reference[p]) for p in common])
            result.update(
                speedup=result["images_per_s"] / baseline,
                cos_mean=float(cosine.mean()),
                cos_min=float(cosine.min()),
            )
            print(
                f"{result['variant']:<12} {result['images_per_s']:8.2f} "
                f"{result['speedup']:8.2f}x {result['cos_mean']:9.5f} {result['cos_min']:9.5f} "
                f"{result['load_or_export_s']:14.1f}"
            )
        out = ROOT / "bench" / "out"
        out.mkdir(exist_ok=True)
        for result in results:
            result.pop("root")
        (out / "ingest.json").write_text(json.dumps(results, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
