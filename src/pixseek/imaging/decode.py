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

from PIL import ExifTags, Image, UnidentifiedImageError

from pixseek.core.errors import ImageDecodeError

# Pixels a decode may produce. CLIP-family models look at a few hundred pixels a
# side, so this only refuses what would cost hundreds of MB (an 83 KB PNG can
# declare 88 Mpx). JPEGs are drafted (decoded at 1/2..1/8 scale) before the check,
# so large camera photos still pass; nothing above MAX_SOURCE_PIXELS is opened.
DEFAULT_MAX_PIXELS = 25_000_000
MAX_SOURCE_PIXELS = 400_000_000
# Memory a decode may hold, which depends on the mode as much as on the pixel count:
# BYTES_PER_PIXEL is the peak per pixel of decoding a mode and converting it to
# upright RGB (Pillow keeps 1, 2 or 4 bytes a pixel; 16- and 32-bit values are
# rescaled through numpy, alpha is composited on white, and the RGB result takes 4
# bytes, 8 while it is rotated upright), measured with some margin. The default admits
# a 25 Mpx RGB image; a 16-bit one is held to about 16 Mpx.
BYTES_PER_PIXEL = {
    "RGB": 8,
    "1": 9,
    "L": 9,
    "P": 9,
    "RGBX": 9,
    "CMYK": 9,
    "YCbCr": 9,
    "LAB": 9,
    "HSV": 9,
    "RGBA": 10,
    "RGBa": 10,
    "I;16": 12,
    "I;16L": 12,
    "I;16B": 12,
    "I;16N": 12,
    "LA": 14,
    "La": 14,
    "PA": 14,
    "I": 22,
    "F": 22,
}
UNKNOWN_BYTES_PER_PIXEL = 24
DEFAULT_MAX_DECODED_BYTES = DEFAULT_MAX_PIXELS * BYTES_PER_PIXEL["RGB"]
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
    """How to decode: the pixel and byte limits guard memory (``max_bytes`` is the peak
    a decode may hold, see :func:`decode_bytes`); ``apply_exif`` rotates upright."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    apply_exif: bool = True
    draft_size: int | None = None
    max_bytes: int = DEFAULT_MAX_DECODED_BYTES


def decode_bytes(size: tuple[int, int], mode: str) -> int:
    """Peak bytes decoding a ``mode`` image of ``size`` into upright RGB holds."""
    width, height = size
    return width * height * BYTES_PER_PIXEL.get(mode, UNKNOWN_BYTES_PER_PIXEL)


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
            _check_bytes(image, options.max_bytes)
            image.load()
            turn = _orientation(image) if options.apply_exif else None
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"image too large: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageDecodeError("not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError(f"corrupt or truncated image: {exc}") from exc
    decoded_size = image.size
    image = to_rgb(image)  # before turning: the decoded pixels are freed first
    if turn is not None:
        turned = image.transpose(turn)
        # annotations made on the raw orientation keep it (see ``expected_size``)
        if expected_size is None or turned.size == expected_size or image.size != expected_size:
            image = turned
    full_size = raw_size if image.size == decoded_size else (raw_size[1], raw_size[0])
    return image, full_size


def _draft(image: Image.Image, options: DecodeOptions) -> None:
    """Decode a JPEG at a reduced scale: to ``draft_size``, or enough to fit the budgets."""
    if options.draft_size:
        image.draft("RGB", (options.draft_size, options.draft_size))
    width, height = image.size
    scale = 1  # JPEG decodes at 1/2, 1/4 or 1/8 for free
    while scale < 8 and (
        width * height > options.max_pixels * scale * scale
        or decode_bytes((width, height), image.mode) > options.max_bytes * scale * scale
    ):
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


def _check_bytes(image: Image.Image, max_bytes: int) -> None:
    needed = decode_bytes(image.size, image.mode)
    if needed > max_bytes:
        width, height = image.size
        raise ImageDecodeError(
            f"image too large: decoding {width}x{height} {image.mode} pixels takes about "
            f"{needed / 2**20:.1f} MiB, over the limit of {max_bytes / 2**20:.1f} MiB"
        )


def _orientation(image: Image.Image) -> Image.Transpose | None:
    """The turn that makes the image upright per its EXIF orientation (a broken EXIF
    block must not lose an otherwise good image)."""
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    except (OSError, ValueError, TypeError, KeyError, SyntaxError):
        return None
    return _TURNS.get(orientation)


_TURNS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB with transparent areas composited on white, 16-bit and CMYK scaled properly."""
    if image.mode == "RGB":
        return image
    if image.mode in {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}:
        image = _integer_to_l(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in {"RGBA", "RGBa", "LA", "La", "PA"}:
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    return image.convert("RGB")


def _integer_to_l(image: Image.Image) -> Image.Image:
    """16/32-bit and float images to 8 bits by their actual range: 8-bit values stay as
    they are, wider ones are scaled to 0..255 (a fixed 1/256 would turn them black).
    The scaling works in place, so it holds one working copy (see BYTES_PER_PIXEL)."""
    import numpy as np

    values = np.asarray(image)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    # float32 holds every 16-bit value exactly; 32-bit values need float64
    work = values.astype(np.float32 if values.dtype.itemsize <= 2 else np.float64)
    del values
    if low < 0 or high > 255:
        base = min(low, 0.0)
        np.subtract(work, base, out=work)
        np.multiply(work, 255.0 / max(high - base, 1e-12), out=work)
    np.rint(work, out=work)
    np.clip(work, 0, 255, out=work)
    return Image.fromarray(work.astype(np.uint8))


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


def read_image_file(path: Path) -> bytes:
    """:func:`read_image_bytes`, with a file that cannot be read (missing, a folder, no
    permission) a decode error too: one kind of error for every image that cannot be had."""
    try:
        return read_image_bytes(path)
    except OSError as exc:
        raise ImageDecodeError(f"cannot read {path}: {exc.strerror or exc}") from exc


def load_image_file(path: Path, options: DecodeOptions = DEFAULT_DECODE) -> Image.Image:
    return decode_image(read_image_file(path), options)
