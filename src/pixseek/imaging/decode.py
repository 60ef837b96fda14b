"""Decoding images safely and cutting object crops out of them.

Decoding is where hostile input arrives (truncated files, decompression bombs,
odd modes), so every failure here becomes an :class:`ImageDecodeError` with the
reason, and nothing else escapes.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from pixseek.core.errors import ImageDecodeError

# Pixels a decode may produce. CLIP-family models look at a few hundred pixels a
# side, so this only refuses what would cost hundreds of MB (an 83 KB PNG can
# declare 88 Mpx). JPEGs are drafted (decoded at 1/2..1/8 scale) before the check,
# so large camera photos still pass; nothing above MAX_SOURCE_PIXELS is opened.
DEFAULT_MAX_PIXELS = 25_000_000
MAX_SOURCE_PIXELS = 400_000_000
# Larger files are refused before they are read: no image a CLIP model needs is this big.
DEFAULT_MAX_FILE_BYTES = 256 * 1024 * 1024
SIGNATURES = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",  # TIFF, little-endian
    b"MM\x00*",  # TIFF, big-endian
)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def looks_like_image(head: bytes) -> bool:
    """Whether the first bytes are the signature of a format pixseek indexes."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    return head.startswith(SIGNATURES)


def image_format(data: bytes) -> str | None:
    """Pillow's name of the format of ``data`` (``JPEG``, ``PNG``...), read from its header."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return str(image.format)
    except Exception:
        return None


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """How to decode: the pixel limit guards memory; ``apply_exif`` rotates upright."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    apply_exif: bool = True
    draft_size: int | None = None


DEFAULT_DECODE = DecodeOptions()
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
    options: DecodeOptions = DEFAULT_DECODE,
    expected_size: tuple[int, int] | None = None,
) -> Image.Image:
    """Decode bytes into an RGB image, upright per EXIF (see :func:`decode_image_sized`)."""
    return decode_image_sized(data, options, expected_size)[0]


def decode_image_sized(
    data: bytes,
    options: DecodeOptions = DEFAULT_DECODE,
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
            _check_pixels(raw_size, MAX_SOURCE_PIXELS)
            if getattr(image, "format", None) == "JPEG":
                _draft(image, options)
            _check_pixels(image.size, options.max_pixels)
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


def _draft(image: Image.Image, options: DecodeOptions) -> None:
    """Decode a JPEG at a reduced scale: to ``draft_size``, or enough to fit the budget."""
    if options.draft_size:
        image.draft("RGB", (options.draft_size, options.draft_size))
    width, height = image.size
    scale = 1  # JPEG decodes at 1/2, 1/4 or 1/8 for free
    while width * height > options.max_pixels * scale * scale and scale < 8:
        scale *= 2
    if scale > 1:
        image.draft("RGB", (width // scale, height // scale))


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
    if image.mode in {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}:
        image = _integer_to_l(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in {"RGBA", "LA", "PA"}:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _integer_to_l(image: Image.Image) -> Image.Image:
    """16/32-bit and float images to 8 bits by their actual range: 8-bit values stay as
    they are, wider ones are scaled to 0..255 (a fixed 1/256 would turn them black)."""
    import numpy as np

    values = np.asarray(image, dtype=np.float64)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if low >= 0 and high <= 255:
        scaled = values
    else:
        base = min(low, 0.0)
        scaled = (values - base) * (255.0 / max(high - base, 1e-12))
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def read_image_bytes(path: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> bytes:
    """A file's bytes, refusing huge files and non-images before reading them whole."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > max_bytes:
            raise ImageDecodeError(f"file is {size} bytes; the limit is {max_bytes}")
        head = handle.read(16)
        if not head:
            raise ImageDecodeError("empty file (0 bytes)")
        if not looks_like_image(head):
            raise ImageDecodeError("not a recognised image format (unknown file signature)")
        return head + handle.read(max_bytes + 1 - len(head))


def load_image_file(path: Path, options: DecodeOptions = DEFAULT_DECODE) -> Image.Image:
    try:
        data = read_image_bytes(path)
    except OSError as exc:
        raise ImageDecodeError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return decode_image(data, options)
