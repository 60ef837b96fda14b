"""Is an int8 export good enough? Measured against fp32 before it is used by default.

Dynamic int8 keeps random-weight models at a cosine of 0.9997, but real ViTs
have activation outliers (a few channels tens of times larger than the rest)
that stretch the per-tensor activation range and wash out every other channel.
So the automatic precision is int8 only when, on a calibration sample (the
user's own images when ingesting, else generated ones), int8 image vectors keep
a mean cosine of at least :data:`MIN_COSINE` to fp32 and the top-10 results of a
small retrieval (text→image and image→image) agree on at least
:data:`MIN_OVERLAP` of their members, and an image embedded alone keeps a cosine of at
least :data:`MIN_COSINE` to the same image embedded among others: dynamic int8 takes one
activation scale for a whole batch, so a vector moves with its batch mates (0.99986 at
worst on ViT-B/32 geometry with random weights, 0.939 with real ViTs' outliers:
``bench/int8.py``), and a query is embedded alone.

The text tower is checked on its own, by the same two numbers on a set of prompts:
its int8 vectors against fp32 ones, and the top 10 images each prompt finds with them
(about 1.8 times faster a query on one CPU core, 8 ms instead of 15 for ViT-B/32).
When it fails, that tower stays fp32 and the image tower is judged by its own check.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pixseek.core.vectors import l2_normalize
from pixseek.models.hf_clip.policy import TextPolicy

MIN_COSINE = 0.995
MIN_OVERLAP = 0.9
QUALITY_FILE = "quality.json"
GENERATED_IMAGES = 48
CALIBRATION_TEXTS = (
    "a photo of a dog",
    "a cat sleeping on a sofa",
    "a red car on a street",
    "a bus at night",
    "people crossing the road",
    "a plate of food",
    "a bird in the sky",
    "a green field with trees",
    "a city skyline",
    "a person riding a bicycle",
    "a boat on the water",
    "a close-up of a flower",
    "a white square",
    "a blue circle on the left",
    "a dark blurry picture",
    "a bright colourful painting",
)


@dataclass(frozen=True, slots=True)
class Quality:
    mean_cosine: float
    min_cosine: float
    top10_overlap: float
    images: int
    source: str
    text_cosine: float = 1.0  # the text tower's int8 check (1.0: not measured, kept fp32)
    # the lowest cosine of an int8 image vector embedded alone to the same embedded in a
    # batch (1.0 in checks kept before it was measured)
    alone_cosine: float = 1.0
    text_overlap: float = 0.0
    texts: int = 0

    @property
    def passed(self) -> bool:
        agrees = self.mean_cosine >= MIN_COSINE and self.top10_overlap >= MIN_OVERLAP
        return agrees and self.alone_cosine >= MIN_COSINE

    @property
    def text_passed(self) -> bool:
        good = self.text_cosine >= MIN_COSINE and self.text_overlap >= MIN_OVERLAP
        return self.texts > 0 and good

    def note(self) -> str:
        measured = (
            f"mean cosine {self.mean_cosine:.4f} (min {self.min_cosine:.4f}), top-10 agreement "
            f"{self.top10_overlap:.2f} on {self.images} {self.source} images, alone against "
            f"in a batch cosine {self.alone_cosine:.4f} at least"
        )
        if not self.passed:
            return (
                f"int8 rejected, fp32 used: {measured}; needs cosines >= {MIN_COSINE} "
                f"and agreement >= {MIN_OVERLAP}"
            )
        text = (
            f"text tower int8 too: cosine {self.text_cosine:.4f}, top-10 agreement "
            f"{self.text_overlap:.2f} on {self.texts} prompts"
            if self.text_passed
            else f"text tower fp32 (int8 cosine {self.text_cosine:.4f}, agreement "
            f"{self.text_overlap:.2f})"
        )
        return f"int8 image tower checked against fp32: {measured}; {text}"

    def save(self, directory: Path) -> None:
        (directory / QUALITY_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, directory: Path) -> Quality | None:
        try:
            return cls(**json.loads((directory / QUALITY_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None


def generated_images(count: int = GENERATED_IMAGES, seed: int = 0) -> list[Image.Image]:
    """Varied pictures: gradients, shapes, textures and blur, at several sizes."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        width, height = (int(v) for v in rng.integers(96, 320, 2))
        top, bottom = rng.integers(0, 256, (2, 3))
        ramp = np.linspace(0, 1, height)[:, None, None]
        pixels = (
            top * (1 - ramp) + bottom * ramp + rng.normal(0, rng.uniform(2, 40), (height, width, 3))
        )
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(1, 5))):
            x0, y0 = int(rng.integers(0, width - 20)), int(rng.integers(0, height - 20))
            x1, y1 = (
                x0 + int(rng.integers(10, width // 2 + 12)),
                y0 + int(rng.integers(10, height // 2 + 12)),
            )
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            shape = (draw.ellipse, draw.rectangle)[int(rng.integers(0, 2))]
            shape((x0, y0, x1, y1), fill=colour)
        if rng.random() < 0.3:
            image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(1, 4))))
        images.append(image)
    return images


def user_images(paths: Sequence[Path], limit: int = GENERATED_IMAGES) -> list[Image.Image]:
    """Up to ``limit`` of the user's images that decode; the bad ones are skipped."""
    from pixseek.core.errors import ImageDecodeError
    from pixseek.imaging.decode import DecodeOptions, load_image_file

    images = []
    for path in paths:
        try:
            images.append(load_image_file(path, DecodeOptions(draft_size=448)))
        except (ImageDecodeError, OSError):
            continue
        if len(images) >= limit:
            break
    return images


def measure(
    fp32: Path,
    int8: Path,
    processor: Any,
    policy: TextPolicy,
    calibration: Sequence[Path] = (),
    text_candidate: Path | None = None,
) -> Quality:
    """Compare the two exports' image towers on the calibration sample, and the int8 text
    tower ``text_candidate`` (when given) with the fp32 one on the calibration prompts."""
    from pixseek.models.runtimes.onnx_session import OnnxSession

    images, source = user_images(calibration), "of your"
    if len(images) < 12:
        images, source = generated_images(), "generated"
    pixels = processor.image_processor(
        images=[i.convert("RGB") for i in images], return_tensors="np"
    )
    inputs = {key: np.asarray(value) for key, value in pixels.items()}
    reference = OnnxSession(fp32 / "image.onnx", fp32 / "text.onnx")
    quantised = OnnxSession(int8 / "image.onnx", text_candidate or int8 / "text.onnx")
    exact = l2_normalize(reference.encode_images(inputs))
    approx = l2_normalize(quantised.encode_images(inputs))
    cosines = np.sum(exact * approx, axis=1)
    alone = l2_normalize(
        np.concatenate(
            [
                quantised.encode_images({k: v[n : n + 1] for k, v in inputs.items()})
                for n in range(len(images))
            ]
        )
    )
    alone_cosine = float(np.min(np.sum(alone * approx, axis=1)))
    tokens = policy.tokenize(processor.tokenizer, CALIBRATION_TEXTS)
    texts = l2_normalize(reference.encode_texts(tokens))
    k = min(10, len(images) // 2)
    queries = np.concatenate([texts, exact])
    overlap = top_overlap(queries @ exact.T, queries @ approx.T, k)
    quality = Quality(
        float(cosines.mean()),
        float(cosines.min()),
        float(overlap),
        len(images),
        source,
        alone_cosine=alone_cosine,
    )
    if text_candidate is None:
        return quality
    approx_texts = l2_normalize(quantised.encode_texts(tokens))
    text_cosines = np.sum(texts * approx_texts, axis=1)
    text_overlap = top_overlap(texts @ exact.T, approx_texts @ exact.T, k)
    return replace(
        quality,
        text_cosine=float(text_cosines.mean()),
        text_overlap=float(text_overlap),
        texts=len(CALIBRATION_TEXTS),
    )


def top_overlap(scores: np.ndarray, other_scores: np.ndarray, k: int) -> float:
    """How much of each query's top ``k`` by ``scores`` is also its top ``k`` by
    ``other_scores`` (the same queries and items, one side embedded another way)."""
    top_a = np.argsort(-scores, axis=1)[:, :k]
    top_b = np.argsort(-other_scores, axis=1)[:, :k]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(top_a, top_b, strict=True)]))
