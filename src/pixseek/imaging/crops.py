"""Boxes on images: validation (clipping what overlaps the edge) and crops with context."""

from __future__ import annotations

import math

from PIL import Image

from pixseek.core.errors import InvalidBoxError
from pixseek.core.records import BoxTuple


def clip_box(box: BoxTuple | list[float], width: int, height: int) -> tuple[BoxTuple, bool]:
    """Check an ``[x, y, w, h]`` pixel box against a ``width`` x ``height`` image.

    A box that partly overlaps the image is clipped to it (the flag says so);
    one with no area, a non-finite number or no overlap at all is an error.
    """
    if len(box) != 4:
        raise InvalidBoxError(f"a box is [x, y, w, h]; got {len(box)} numbers")
    x, y, w, h = (float(value) for value in box)
    if not all(math.isfinite(value) for value in (x, y, w, h)):
        raise InvalidBoxError(f"box {list(box)} has a non-finite number")
    if w <= 0 or h <= 0:
        raise InvalidBoxError(f"box {list(box)} has no area (width and height must be > 0)")
    if x >= 0 and y >= 0 and x + w <= width and y + h <= height:
        return (x, y, w, h), False
    left, top = max(x, 0.0), max(y, 0.0)
    right, bottom = min(x + w, float(width)), min(y + h, float(height))
    if right - left < 0.5 or bottom - top < 0.5:
        raise InvalidBoxError(f"box {list(box)} lies outside the {width}x{height} image")
    clipped = (left, top, right - left, bottom - top)
    slack = 0.5  # rounding in annotation tools is not worth a warning
    moved = max(abs(a - b) for a, b in zip(clipped, (x, y, w, h), strict=True)) > slack
    return clipped, moved


def validate_box(box: BoxTuple | list[float], width: int, height: int) -> BoxTuple:
    """The box clipped to the image (see :func:`clip_box`)."""
    return clip_box(box, width, height)[0]


def crop_box(image: Image.Image, box: BoxTuple, margin: float) -> Image.Image:
    """Crop ``box`` widened by ``margin`` (a fraction of its size) on each side.

    A little context around an object helps CLIP recognise it; the widened box
    is clamped to the image and always at least one pixel.
    """
    x, y, w, h = validate_box(box, image.width, image.height)
    left = max(0, math.floor(x - margin * w))
    top = max(0, math.floor(y - margin * h))
    right = min(image.width, math.ceil(x + w + margin * w))
    bottom = min(image.height, math.ceil(y + h + margin * h))
    right = max(right, left + 1)
    bottom = max(bottom, top + 1)
    return image.crop((left, top, right, bottom))
