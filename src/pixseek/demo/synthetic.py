"""A synthetic image-caption dataset: coloured shapes of several kinds, sizes and
positions on varied backgrounds, with captions like "a small red circle on the left".

It needs nothing downloaded, so it serves the offline demo and lets tests train
a real (tiny) model whose search quality can be measured.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

SHAPES = ("circle", "square", "triangle", "cross")
COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 170, 40),
    "blue": (30, 60, 220),
    "yellow": (235, 210, 20),
    "purple": (140, 40, 180),
    "white": (250, 250, 250),
}
SIZES = {"small": 0.26, "large": 0.5}
POSITIONS = {"left": (0.27, 0.5), "right": (0.73, 0.5), "top": (0.5, 0.27), "bottom": (0.5, 0.73)}


@dataclass(frozen=True, slots=True)
class Scene:
    shape: str
    colour: str
    size: str
    position: str

    @property
    def caption(self) -> str:
        return f"a {self.size} {self.colour} {self.shape} on the {self.position}"


def random_scene(rng: random.Random) -> Scene:
    return Scene(
        rng.choice(SHAPES),
        rng.choice(list(COLOURS)),
        rng.choice(list(SIZES)),
        rng.choice(list(POSITIONS)),
    )


def _background(rng: random.Random, side: int, avoid: tuple[int, int, int]) -> Image.Image:
    while True:
        tone = tuple(rng.randint(40, 200) for _ in range(3))
        if sum(abs(a - b) for a, b in zip(tone, avoid, strict=True)) > 150:
            break
    image = Image.new("RGB", (side, side), tone)  # type: ignore[arg-type]
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(2, 5)):  # faint texture so backgrounds are not flat
        shade = tuple(min(255, max(0, c + rng.randint(-25, 25))) for c in tone)
        x, y = rng.randint(0, side), rng.randint(0, side)
        draw.ellipse((x - side // 3, y - side // 3, x + side // 3, y + side // 3), fill=shade)  # type: ignore[arg-type]
    return image.filter(ImageFilter.GaussianBlur(side / 20))


def render(scene: Scene, rng: random.Random, side: int = 64) -> tuple[Image.Image, list[float]]:
    """The image and the shape's box ``[x, y, w, h]``."""
    colour = COLOURS[scene.colour]
    image = _background(rng, side, colour)
    draw = ImageDraw.Draw(image)
    extent = SIZES[scene.size] * side * rng.uniform(0.9, 1.1)
    cx, cy = POSITIONS[scene.position]
    cx = cx * side + rng.uniform(-0.05, 0.05) * side
    cy = cy * side + rng.uniform(-0.05, 0.05) * side
    half = extent / 2
    left, top, right, bottom = cx - half, cy - half, cx + half, cy + half
    if scene.shape == "circle":
        draw.ellipse((left, top, right, bottom), fill=colour)
    elif scene.shape == "square":
        draw.rectangle((left, top, right, bottom), fill=colour)
    elif scene.shape == "triangle":
        draw.polygon([(cx, top), (right, bottom), (left, bottom)], fill=colour)
    else:
        bar = extent / 3
        draw.rectangle((left, cy - bar / 2, right, cy + bar / 2), fill=colour)
        draw.rectangle((cx - bar / 2, top, cx + bar / 2, bottom), fill=colour)
    box = [
        round(max(left, 0), 2),
        round(max(top, 0), 2),
        round(min(extent, side - max(left, 0)), 2),
        round(min(extent, side - max(top, 0)), 2),
    ]
    return image, box


def generate(
    count: int, seed: int = 0, side: int = 64
) -> Iterator[tuple[Scene, Image.Image, list[float]]]:
    rng = random.Random(seed)
    for _ in range(count):
        scene = random_scene(rng)
        image, box = render(scene, rng, side)
        yield scene, image, box


def write_dataset(out: Path, count: int, seed: int = 0, side: int = 64) -> Path:
    """PNGs, ``captions.jsonl`` (path, caption, label), ``instances.json`` (COCO boxes)."""
    out.mkdir(parents=True, exist_ok=True)
    captions, images, annotations = [], [], []
    categories = {shape: index + 1 for index, shape in enumerate(SHAPES)}
    for index, (scene, image, box) in enumerate(generate(count, seed, side)):
        name = f"shape{index:05d}.png"
        image.save(out / name)
        captions.append({"path": name, "caption": scene.caption, "label": scene.shape})
        images.append({"id": index, "file_name": name, "width": side, "height": side})
        annotations.append(
            {"id": index, "image_id": index, "bbox": box, "category_id": categories[scene.shape]}
        )
    (out / "captions.jsonl").write_text("".join(json.dumps(c) + "\n" for c in captions))
    coco = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": s} for s, i in categories.items()],
    }
    (out / "instances.json").write_text(json.dumps(coco))
    return out


def read_captions(folder: Path) -> list[dict[str, str]]:
    """The rows of a dataset's ``captions.jsonl``: path (relative), caption, label."""
    with (folder / "captions.jsonl").open() as handle:
        return [json.loads(line) for line in handle if line.strip()]
