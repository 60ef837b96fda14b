"""The edits that make a copy of a picture: what copy detection must see through.

Resizing, re-encoding, crops (centre and corner), flips, small rotations, brightness and
contrast, grayscale, text and logo overlays, borders. Calibration applies them to a
collection's own images to measure how a model scores copies; the copy-detection
benchmark applies them to photos. Each edit is deterministic given its random generator.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable

from PIL import Image, ImageDraw, ImageEnhance, ImageOps

Edit = Callable[[Image.Image, random.Random], Image.Image]


def _resize(image: Image.Image, rng: random.Random) -> Image.Image:
    scale = rng.choice((0.5, 0.7))
    size = (max(8, round(image.width * scale)), max(8, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)


def _jpeg(image: Image.Image, rng: random.Random) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=rng.choice((25, 30, 40)))
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def _crop(fraction: float, corner: bool) -> Edit:
    def crop(image: Image.Image, rng: random.Random) -> Image.Image:
        w, h = round(image.width * fraction), round(image.height * fraction)
        if corner:
            x = rng.choice((0, image.width - w))
            y = rng.choice((0, image.height - h))
        else:
            x, y = (image.width - w) // 2, (image.height - h) // 2
        return image.crop((x, y, x + w, y + h))

    return crop


def _flip(image: Image.Image, rng: random.Random) -> Image.Image:
    return ImageOps.mirror(image)


def _rotate(image: Image.Image, rng: random.Random) -> Image.Image:
    angle = rng.choice((-1, 1)) * rng.uniform(5.0, 15.0)
    return image.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=(0, 0, 0))


def _brightness(image: Image.Image, rng: random.Random) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(rng.choice((0.65, 1.35)))


def _contrast(image: Image.Image, rng: random.Random) -> Image.Image:
    return ImageEnhance.Contrast(image).enhance(rng.choice((0.6, 1.5)))


def _grayscale(image: Image.Image, rng: random.Random) -> Image.Image:
    return ImageOps.grayscale(image).convert("RGB")


def _text(image: Image.Image, rng: random.Random) -> Image.Image:
    out = image.copy()
    draw = ImageDraw.Draw(out)
    band = max(10, image.height // 8)
    y = rng.choice((0, image.height - band))
    draw.rectangle((0, y, image.width, y + band), fill=(0, 0, 0))
    words = rng.choice(("(c) all rights reserved", "SALE 50% OFF", "www.example.com"))
    draw.text((4, y + band // 4), words, fill=(255, 255, 255), font_size=max(8, band // 2))
    return out


def _logo(image: Image.Image, rng: random.Random) -> Image.Image:
    out = image.copy()
    draw = ImageDraw.Draw(out)
    side = max(8, min(image.size) // 5)
    x = rng.choice((4, image.width - side - 4))
    y = rng.choice((4, image.height - side - 4))
    colour = rng.choice(((230, 30, 30), (255, 255, 255), (20, 90, 220)))
    draw.ellipse((x, y, x + side, y + side), fill=colour)
    draw.rectangle((x + side // 4, y + side // 4, x + 3 * side // 4, y + 3 * side // 4), fill=0)
    return out


def _border(image: Image.Image, rng: random.Random) -> Image.Image:
    width = max(2, round(min(image.size) * rng.uniform(0.05, 0.12)))
    colour = rng.choice(((0, 0, 0), (255, 255, 255), (128, 128, 128)))
    return ImageOps.expand(image, border=width, fill=colour)


EDITS: dict[str, Edit] = {
    "resize": _resize,
    "jpeg": _jpeg,
    "crop_80": _crop(0.8, corner=False),
    "crop_60_corner": _crop(0.6, corner=True),
    "flip": _flip,
    "rotate": _rotate,
    "brightness": _brightness,
    "contrast": _contrast,
    "grayscale": _grayscale,
    "text": _text,
    "logo": _logo,
    "border": _border,
}


def edited(image: Image.Image, name: str, seed: int) -> Image.Image:
    """``image`` with the edit ``name`` applied, the same for the same seed."""
    return EDITS[name](image.convert("RGB"), random.Random(seed))
