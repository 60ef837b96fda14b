"""Training on an accelerator: pixseek's training steps on the automatic device against the CPU.

    PYTHONPATH=src python bench/train_device.py [--shape vit-b32|tiny] [--images 256]
        [--batch 64] [--warmup 5] [--steps 20] [--cpu-warmup 2] [--cpu-steps 3]

Builds a randomly initialised CLIP (``--shape vit-b32``: the geometry of
openai/clip-vit-base-patch32; ``tiny``: the test models' few hundred KB) with a tokenizer
trained on the captions of ``--images`` generated pictures, and times the two steps
``pixseek train`` takes, through the same functions (``load_for_training``,
``optimizer_for``, ``batches``, then ``pair_step`` or ``copy_step``):

- ``full``: the contrastive image-text step (CLIP loss, every weight trains) on batches
  of picture-caption pairs, preprocessed once as ``pixseek train`` does;
- ``copy``: ``--mode copy``'s step, in which two random copies of each picture of the batch
  are made on the CPU (PIL) and the image tower trains on them.

Each runs on the automatic device (``auto``: CUDA, else MPS, else the CPU) for ``--warmup``
untimed and ``--steps`` timed steps, and on the CPU, the baseline, for ``--cpu-warmup`` and
``--cpu-steps``, in the same run. Prints the device, steps/s, images/s (pictures a second:
a copy step makes two copies of each) and the ratio to the CPU. Needs only torch,
transformers, numpy and Pillow besides ``src/``.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pixseek.demo.factory import ClipShape, build_clip
from pixseek.demo.synthetic import generate
from pixseek.models.hf_clip.policy import TextPolicy
from pixseek.training.copy import CopyImage, CopyPictures, copy_step, model_input_size, random_view
from pixseek.training.data import Pair
from pixseek.training.loop import (
    Mode,
    PairTensors,
    TrainOptions,
    batch_starts,
    batches,
    load_for_training,
    optimizer_for,
    pair_step,
    seed_everything,
    training_device,
)

SHAPES = {"vit-b32": ClipShape.vit_b32(), "tiny": ClipShape()}


@dataclass(frozen=True)
class Timing:
    mode: str
    device: str
    seconds_per_step: float
    batch: int

    @property
    def steps_per_s(self) -> float:
        return 1 / self.seconds_per_step

    @property
    def images_per_s(self) -> float:
        return self.batch / self.seconds_per_step


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def timed(step: Callable[[], float], device: torch.device, warmup: int, steps: int) -> float:
    """Seconds per step, after ``warmup`` untimed steps (kernels, allocator, caches)."""
    for _ in range(warmup):
        step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()  # returns the loss as a float: the step has finished on the device
    synchronize(device)
    return (time.perf_counter() - started) / steps


def endless(count: int, batch: int, seed: int) -> Iterator[Any]:
    """Batches of epoch after epoch, in ``pixseek train``'s order."""
    generator = seed_everything(seed)
    while True:
        yield from batches(torch.randperm(count, generator=generator), batch)


def options_for(mode: Mode, batch: int, count: int, steps: int, device: torch.device) -> Any:
    """Options whose schedule spans the steps run (a rate of zero would not change the
    timing, but a real run never trains at it)."""
    epochs = -(-steps // max(1, len(batch_starts(count, batch))))
    return TrainOptions(mode=mode, epochs=epochs, batch_size=batch, device=str(device))


def time_pairs(
    model: Path, pairs: list[Pair], device: torch.device, batch: int, warmup: int, steps: int
) -> Timing:
    processor, clip = load_for_training(str(model), "full", device)
    clip.train()
    data = PairTensors(processor, pairs, TextPolicy.for_config(clip.config, processor.tokenizer))
    options = options_for("full", batch, len(pairs), warmup + steps, device)
    optimizer, schedule = optimizer_for(clip, options, len(pairs))
    order = endless(len(pairs), batch, 0)
    seconds = timed(
        lambda: pair_step(clip, optimizer, schedule, data, next(order)), device, warmup, steps
    )
    return Timing("full", device.type, seconds, batch)


def time_copies(
    model: Path, images: list[CopyImage], device: torch.device, batch: int, warmup: int, steps: int
) -> Timing:
    processor, clip = load_for_training(str(model), "copy", device)
    clip.train()
    data = CopyPictures(images, model_input_size(str(model), clip))
    options = options_for("copy", batch, len(data.pictures), warmup + steps, device)
    optimizer, schedule = optimizer_for(clip, options, len(data.pictures))
    order, rng = endless(len(data.pictures), batch, 0), random.Random(0)

    def step() -> float:
        rows = next(order).tolist()
        return copy_step(clip, processor, optimizer, schedule, data, rows, rng)

    return Timing("copy", device.type, timed(step, device, warmup, steps), batch)


def copies_alone(images: list[CopyImage], batch: int) -> float:
    """Seconds to make one batch's random copies on the CPU, part of every copy step."""
    from PIL import Image

    pictures = [Image.open(image.path).convert("RGB") for image in images[:batch]]
    rng = random.Random(1)
    started = time.perf_counter()
    for picture in pictures:
        random_view(picture, rng)
        random_view(picture, rng)
    return time.perf_counter() - started


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({torch.get_num_threads()} threads)"


def transformers_version() -> str:
    import transformers

    return str(transformers.__version__)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="vit-b32")
    parser.add_argument("--images", type=int, default=256, help="generated pictures")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps on the device")
    parser.add_argument("--steps", type=int, default=20, help="timed steps on the device")
    parser.add_argument("--cpu-warmup", type=int, default=2)
    parser.add_argument("--cpu-steps", type=int, default=3)
    parser.add_argument("--device", default="auto", help="auto|cuda|mps|cpu (default auto)")
    args = parser.parse_args()

    device, cpu = training_device(args.device), torch.device("cpu")
    shape = SHAPES[args.shape]
    side = max(64, shape.image_size)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "pictures").mkdir()
        pairs, images = [], []
        for n, (scene, picture, _) in enumerate(generate(args.images, seed=0, side=side)):
            path = work / "pictures" / f"{n:05d}.png"
            picture.save(path)
            pairs.append(Pair(str(n), str(path), scene.caption))
            images.append(CopyImage(str(n), str(path)))
        model = build_clip(work / "model", shape, [p.text for p in pairs], seed=0)
        parameters = sum(t.numel() for t in load_for_training(str(model), "full")[1].parameters())
        print(
            f"model: random CLIP, {args.shape} ({parameters / 1e6:.1f}M parameters, "
            f"{shape.image_size} px input); {args.images} generated pictures of {side} px "
            f"with captions; batch {args.batch}"
        )
        print(f"device: {device_name(device)}; baseline: {device_name(cpu)}")
        print(f"torch {torch.__version__}, transformers {transformers_version()}")
        timings = []
        for mode, run in (("full", time_pairs), ("copy", time_copies)):
            data: Any = pairs if mode == "full" else images
            on_device = run(model, data, device, args.batch, args.warmup, args.steps)
            on_cpu = run(model, data, cpu, args.batch, args.cpu_warmup, args.cpu_steps)
            timings.append((on_device, on_cpu))
        spent = copies_alone(images, args.batch)
    print()
    print(f"{'step':<6} {'device':<6} {'steps/s':>9} {'images/s':>9} {'vs CPU':>7}")
    for on_device, on_cpu in timings:
        for timing in (on_device, on_cpu):
            ratio = on_cpu.seconds_per_step / timing.seconds_per_step
            print(
                f"{timing.mode:<6} {timing.device:<6} {timing.steps_per_s:>9.3f} "
                f"{timing.images_per_s:>9.1f} {ratio:>6.1f}x"
            )
    steps = f"{args.warmup} + {args.steps} steps on the device, {args.cpu_warmup} + "
    print(f"({steps}{args.cpu_steps} on the CPU, untimed + timed)")
    print(f"making one batch's two copies of each picture on the CPU: {spent:.3f} s a step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
