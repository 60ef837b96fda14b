"""Decoding images safely and cutting object crops out of them.

Decoding is where hostile input arrives (truncated files, decompression bombs,
odd modes), so every failure here becomes an :class:`ImageDecodeError` with the
reason, and nothing else escapes.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from pixseek.errors import ImageDecodeError, InvalidBoxError
from pixseek.records import BoxTuple

DEFAULT_MAX_PIXELS = 100_000_000
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """How to decode: the pixel limit guards memory; ``apply_exif`` rotates upright."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    apply_exif: bool = True
    draft_size: int | None = None


DRAFT_FACTOR = 2


def decode_options_for(model_input_size: int | None, fast: bool = True) -> DecodeOptions:
    """Decode JPEGs at reduced scale, but never below twice what the model looks at.

    JPEG's DCT scaling (1/2, 1/4, 1/8) skips most of the decode work for large
    photos; keeping at least twice the model's input size leaves the final
    resize with enough pixels that embeddings barely move (see bench/ingest.py).
    """
    if not fast or not model_input_size:
        return DecodeOptions()
    return DecodeOptions(draft_size=model_input_size * DRAFT_FACTOR)


def decode_image(
    data: bytes,
    options: DecodeOptions = DecodeOptions(),
    expected_size: tuple[int, int] | None = None,
) -> Image.Image:
    """Decode bytes into an RGB image, upright per EXIF (see :func:`decode_image_sized`)."""
    return decode_image_sized(data, options, expected_size)[0]


def decode_image_sized(
    data: bytes,
    options: DecodeOptions = DecodeOptions(),
    expected_size: tuple[int, int] | None = None,
) -> tuple[Image.Image, tuple[int, int]]:
    """Decode bytes into an RGB image, and the upright size of the full-resolution image.

    With ``draft_size`` a JPEG is decoded at a reduced scale (much faster); the
    returned size is still the full one, which boxes are expressed in.
    ``expected_size`` (width, height) is what annotations were made on: if the
    EXIF-rotated size disagrees with it but the raw size matches, the raw
    orientation is kept so the annotation boxes still fit.
    """
    if not data:
        raise ImageDecodeError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data))
            raw_size = image.size
            _check_pixels(raw_size, options.max_pixels)
            if options.draft_size and getattr(image, "format", None) == "JPEG":
                image.draft("RGB", (options.draft_size, options.draft_size))
            image.load()
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"image too large: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageDecodeError("not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError(f"corrupt or truncated image: {exc}") from exc
    decoded_size = image.size
    if options.apply_exif:
        image = _upright(image, expected_size)
    full_size = raw_size if image.size == decoded_size else (raw_size[1], raw_size[0])
    return to_rgb(image), full_size


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"image too large: {width}x{height} pixels exceeds the limit of {max_pixels}"
        )


def _upright(image: Image.Image, expected_size: tuple[int, int] | None) -> Image.Image:
    try:
        rotated = ImageOps.exif_transpose(image)
    except (OSError, ValueError, TypeError, KeyError, SyntaxError):
        return image  # a broken EXIF block must not lose an otherwise good image
    if rotated is None:
        return image
    if expected_size is not None and rotated.size != expected_size and image.size == expected_size:
        return image
    return rotated


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB with transparent areas composited on white, 16-bit and CMYK scaled properly."""
    if image.mode == "RGB":
        return image
    if image.mode in {"I;16", "I;16B", "I;16L", "I"}:
        image = image.point(lambda value: value * (1 / 256)).convert("L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in {"RGBA", "LA", "PA"}:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def load_image_file(path: Path, options: DecodeOptions = DecodeOptions()) -> Image.Image:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageDecodeError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return decode_image(data, options)


def validate_box(box: BoxTuple | list[float], width: int, height: int) -> BoxTuple:
    """Check an ``[x, y, w, h]`` pixel box against an image of ``width`` x ``height``.

    Half a pixel of slack absorbs rounding in annotation tools; anything further
    outside the image is an error rather than a silently clipped crop.
    """
    if len(box) != 4:
        raise InvalidBoxError(f"a box is [x, y, w, h]; got {len(box)} numbers")
    x, y, w, h = (float(value) for value in box)
    if not all(math.isfinite(value) for value in (x, y, w, h)):
        raise InvalidBoxError(f"box {list(box)} has a non-finite number")
    if w <= 0 or h <= 0:
        raise InvalidBoxError(f"box {list(box)} has no area (width and height must be > 0)")
    slack = 0.5
    if x < -slack or y < -slack or x + w > width + slack or y + h > height + slack:
        raise InvalidBoxError(f"box {list(box)} lies outside the {width}x{height} image")
    if x < 0:
        x, w = 0.0, w + x
    if y < 0:
        y, h = 0.0, h + y
    if x + w > width:
        w = width - x
    if y + h > height:
        h = height - y
    return (x, y, w, h)


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
