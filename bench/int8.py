"""The int8 check on ViT-B/32 geometry: agreement with fp32 and speed, clean and with outliers.

    python bench/int8.py [--images 64] [--data ../shared/data/caltech101]

Builds a randomly initialised ViT-B/32 twice: as is, and with the activation
outliers real ViTs have (a few LayerNorm channels scaled x50). For each, exports
fp32 and int8 ONNX, runs pixseek's int8 check on real Caltech-101 photos, and
times the image tower on the same photos in both precisions (fp32 is the
baseline of each row), and measures how far an int8 vector moves with its batch mates
(``alone cos``: the lowest cosine between an image embedded alone and in a batch of 32).
Prints what the automatic precision would choose.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pixseek.demo.factory import ClipShape, build_clip
from pixseek.models.hf_clip.loading import load_model, load_processor
from pixseek.models.hf_clip.onnx_build import ensure_export
from pixseek.models.hf_clip.policy import TextPolicy
from pixseek.models.hf_clip.quality import measure, user_images
from pixseek.models.runtimes.onnx_session import OnnxSession

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "caltech101"


def add_outliers(directory: Path) -> None:
    import torch

    model = load_model(str(directory))
    with torch.no_grad():
        for layer in model.vision_model.encoder.layers:
            for norm in (layer.layer_norm1, layer.layer_norm2):
                norm.weight[:3] *= 50
                norm.bias[:3] *= 50
    model.save_pretrained(directory)


def alone_versus_batched(directory: Path, inputs: dict[str, np.ndarray]) -> float:
    """The lowest cosine between an image's vector embedded alone and in a batch of 32:
    int8 activations are quantized with one scale for the whole batch, so an image's
    vector moves a little with its batch mates (fp32: 1.0)."""
    session = OnnxSession(directory / "image.onnx", directory / "text.onnx")
    pixels = inputs["pixel_values"]
    batched = np.concatenate(
        [
            session.encode_images({"pixel_values": pixels[s : s + 32]})
            for s in range(0, len(pixels), 32)
        ]
    )
    alone = np.concatenate([session.encode_images({"pixel_values": p[None]}) for p in pixels])
    batched /= np.linalg.norm(batched, axis=1, keepdims=True)
    alone /= np.linalg.norm(alone, axis=1, keepdims=True)
    return float(np.min(np.sum(batched * alone, axis=1)))


def images_per_second(directory: Path, inputs: dict[str, np.ndarray], repeats: int = 3) -> float:
    session = OnnxSession(directory / "image.onnx", directory / "text.onnx")
    session.encode_images({k: v[:4] for k, v in inputs.items()})  # warm up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for start in range(0, len(inputs["pixel_values"]), 32):
            session.encode_images({k: v[start : start + 32] for k, v in inputs.items()})
        best = min(best, time.perf_counter() - started)
    return len(inputs["pixel_values"]) / best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--images", type=int, default=64)
    args = parser.parse_args()
    listing = args.data / "test.txt"
    if not listing.is_file():
        print(f"bench/int8.py needs Caltech-101 at {args.data}", file=sys.stderr)
        return 2
    relative = sorted(listing.read_text().split())[:: max(1, 3049 // args.images)][: args.images]
    paths = [args.data / "101_ObjectCategories" / r for r in relative]
    print(f"ViT-B/32 geometry, random weights; {len(paths)} Caltech-101 photos")
    print(
        f"{'model':<10} {'cos mean':>9} {'cos min':>9} {'top-10':>7} {'fp32 img/s':>11} "
        f"{'int8 img/s':>11} {'speed-up':>9} {'alone cos':>10}  automatic precision"
    )
    with tempfile.TemporaryDirectory() as work:
        for name in ("clean", "outliers"):
            model = build_clip(Path(work) / name, ClipShape.vit_b32())
            if name == "outliers":
                add_outliers(model)
            processor = load_processor(str(model))
            policy = TextPolicy.for_config(load_model(str(model)).config, processor.tokenizer)
            fp32 = ensure_export(str(model), "fp32", processor, None)
            int8 = ensure_export(str(model), "int8", processor, None, policy)
            quality = measure(fp32, int8, processor, policy, paths)
            pictures = user_images(paths)
            inputs = dict(processor.image_processor(images=pictures, return_tensors="np"))
            slow, fast = images_per_second(fp32, inputs), images_per_second(int8, inputs)
            alone = alone_versus_batched(int8, inputs)
            choice = "int8" if quality.passed else "fp32 (int8 rejected)"
            print(
                f"{name:<10} {quality.mean_cosine:9.5f} {quality.min_cosine:9.5f} "
                f"{quality.top10_overlap:7.3f} {slow:11.1f} {fast:11.1f} {fast / slow:8.2f}x "
                f"{alone:10.5f}  {choice}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
