"""Embedding on an accelerator: the automatic choice against fp32 on the CPU.

    python bench/device.py [--images 256] [--texts 256] [--batch 64]

Builds a randomly initialised ViT-B/32 (the geometry of openai/clip-vit-base-patch32)
locally and loads it by path through pixseek's own loader twice: with the automatic
settings (torch fp16 on CUDA when there is a GPU) and with torch fp32 on the CPU, the
baseline. Both embed the same generated pictures and prompts. Prints what the automatic
choice picked, images/s and text queries/s of each (ratios to the baseline, measured in
the same run), and how closely the two agree: cosine of each vector to its baseline
(mean / min) and the overlap of the top-10 image-to-image and text-to-image results.
Random weights make every picture look alike, so agreement is a floor for real models.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pixseek.demo.factory import ClipShape, build_clip
from pixseek.demo.synthetic import generate
from pixseek.models.hf_clip.quality import top_overlap
from pixseek.models.options import EmbedderOptions
from pixseek.models.registry import load_embedder, resolve_runtime


@dataclass
class Run:
    label: str
    images: np.ndarray
    texts: np.ndarray
    images_per_s: float
    texts_per_s: float
    query_ms: float


def timed(
    embed: Callable[[Sequence], np.ndarray], items: Sequence, repeats: int = 3
) -> tuple[np.ndarray, float]:
    embed(items[:8])  # warm up: kernels, memory pools
    best, out = float("inf"), np.empty(0)
    for _ in range(repeats):
        started = time.perf_counter()
        out = embed(items)
        best = min(best, time.perf_counter() - started)
    return out, len(items) / best


def measure(label: str, options: EmbedderOptions, images: list, texts: list[str]) -> Run:
    embedder = load_embedder(options)
    image_vectors, images_per_s = timed(embedder.embed_images, images)
    text_vectors, texts_per_s = timed(embedder.embed_texts, texts)
    single = []
    for text in texts[:50]:
        started = time.perf_counter()
        embedder.embed_texts([text])
        single.append(time.perf_counter() - started)
    return Run(
        label, image_vectors, text_vectors, images_per_s, texts_per_s, np.median(single) * 1000
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    scenes = list(generate(args.images, seed=3, side=224))
    images: list[Image.Image] = [image for _, image, _ in scenes]
    texts = [scene.caption for scene, _, _ in scenes][: args.texts]
    with tempfile.TemporaryDirectory() as work:
        model = str(build_clip(Path(work) / "vit-b32", ClipShape.vit_b32(), texts))
        automatic = EmbedderOptions(model=model, batch_size=args.batch)
        chosen = resolve_runtime(automatic)
        print(
            f"automatic choice: device {chosen.device}, runtime {chosen.runtime}, "
            f"precision {chosen.precision}"
        )
        cpu = EmbedderOptions(
            model=model, runtime="torch", precision="fp32", device="cpu", batch_size=args.batch
        )
        runs = [
            measure("torch fp32, CPU (baseline)", cpu, images, texts),
            measure(f"automatic ({chosen.device} {chosen.precision})", automatic, images, texts),
        ]
        if chosen.device == "cuda":
            fp32 = EmbedderOptions(
                model=model, runtime="torch", precision="fp32", device="cuda", batch_size=256
            )
            runs.append(measure("torch fp32, CUDA, batch 256", fp32, images, texts))
    base = runs[0]
    print(
        f"\n{'variant':34} {'img/s':>8} {'vs base':>8} {'text/s':>8} {'1 query ms':>11} "
        f"{'cos mean/min':>15} {'top10 img':>10} {'top10 text':>11}"
    )
    for run in runs:
        cosines = np.sum(run.images * base.images, axis=1)
        print(
            f"{run.label:34} {run.images_per_s:8.1f} {run.images_per_s / base.images_per_s:7.1f}x "
            f"{run.texts_per_s:8.1f} {run.query_ms:11.2f} "
            f"{cosines.mean():7.5f}/{cosines.min():7.5f} "
            f"{top_overlap(run.images @ run.images.T, base.images @ base.images.T, 10):10.3f} "
            f"{top_overlap(run.texts @ run.images.T, base.texts @ base.images.T, 10):11.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
