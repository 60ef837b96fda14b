"""A corpus of hostile files, generated here, must be indexed or skipped exactly as expected."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixseek.core.filters import Filter
from pixseek.imaging.decode import DecodeOptions, decode_image
from pixseek.ingest import FolderSource, IngestOptions, ingest


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims huge dimensions: a decompression bomb that must not be decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg_bytes(image: Image.Image, **kwargs) -> bytes:  # type: ignore[no-untyped-def]
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **kwargs)
    return buffer.getvalue()


def gradient(width: int = 80, height: int = 50) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)
    pixels = np.stack([np.tile(x, (height, 1))] * 3, axis=-1)
    pixels[..., 1] = 120
    return Image.fromarray(pixels)


def write_corpus(root: Path) -> tuple[dict[str, tuple[int, int]], dict[str, str]]:
    """Returns the expected successes (name -> stored size) and failures (name -> error)."""
    root.mkdir(parents=True)
    good = jpeg_bytes(gradient())
    (root / "plain.jpg").write_bytes(good)
    (root / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "zero.jpg").write_bytes(b"")
    (root / "bomb.png").write_bytes(png_header_only(60_000, 60_000))
    (root / "text.jpg").write_text("definitely not a jpeg")
    gradient().convert("CMYK").save(root / "cmyk.jpg")
    sixteen = (np.arange(40 * 30, dtype=np.uint16).reshape(30, 40) * 50).astype(np.uint16)
    Image.fromarray(sixteen).save(root / "sixteen.png")
    palette = gradient().convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.info["transparency"] = 0
    palette.save(root / "palette.png", transparency=0)
    frames = [Image.new("RGB", (30, 20), colour) for colour in ("red", "green", "blue")]
    frames[0].save(root / "animated.gif", save_all=True, append_images=frames[1:], duration=50)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    (root / "rotated.JPEG").write_bytes(jpeg_bytes(gradient(80, 50), exif=exif.tobytes()))
    Image.new("RGBA", (20, 20), (0, 0, 255, 128)).save(root / "alpha.webp")
    gradient(40, 40).save(root / "gray.tiff")
    successes = {
        "plain.jpg": (80, 50),
        "cmyk.jpg": (80, 50),
        "sixteen.png": (40, 30),
        "palette.png": (80, 50),
        "animated.gif": (30, 20),
        "rotated.JPEG": (50, 80),
        "alpha.webp": (20, 20),
        "gray.tiff": (40, 40),
    }
    failures = {
        "truncated.jpg": "truncated",
        "zero.jpg": "empty",
        "bomb.png": "too large",
        "text.jpg": "not a recognised image format",
    }
    return successes, failures


def test_hostile_corpus(collection, tmp_path) -> None:
    successes, failures = write_corpus(tmp_path / "hostile")
    report = ingest(collection, FolderSource((tmp_path / "hostile",)), IngestOptions(workers=2))
    assert report.indexed == len(successes)
    assert report.failed == len(failures)
    errors = {Path(f.path).name: f.error for f in report.failures}
    assert set(errors) == set(failures)
    for name, fragment in failures.items():
        assert fragment in errors[name], (name, errors[name])
    stored = {
        Path(r.path).name: (r.width, r.height)
        for r in collection.records(Filter.where({"kind": "image"}))
    }
    assert stored == successes
    assert {Path(f.path).name for f in collection.failures.list()} == set(failures)


def test_decoded_pixels_are_sensible() -> None:
    rotated = gradient(80, 50)
    exif = Image.Exif()
    exif[0x0112] = 6
    upright = decode_image(jpeg_bytes(rotated, exif=exif.tobytes(), quality=95))
    assert upright.size == (50, 80) and upright.mode == "RGB"
    # left-to-right gradient becomes top-to-bottom after a 90° clockwise turn
    column = np.asarray(upright)[:, 25, 0].astype(int)
    assert column[0] < 40 and column[-1] > 210
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    assert decode_image(buffer.getvalue()).getpixel((4, 4))[0] > 200
    transparent = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    buffer = io.BytesIO()
    transparent.save(buffer, "PNG")
    assert decode_image(buffer.getvalue()).getpixel((0, 0)) == (255, 255, 255)


def test_pixel_limit_is_configurable() -> None:
    import io

    buffer = io.BytesIO()
    gradient(100, 100).save(buffer, "PNG")
    with pytest.raises(Exception, match="exceeds the limit of 5000"):
        decode_image(buffer.getvalue(), DecodeOptions(max_pixels=5000))
    # a JPEG is decoded at a reduced scale that fits the budget instead
    drafted = decode_image(jpeg_bytes(gradient(100, 100)), DecodeOptions(max_pixels=5000))
    assert drafted.size == (50, 50)


def test_the_decode_budget_counts_bytes_by_mode() -> None:
    from pixseek.core.errors import ImageDecodeError
    from pixseek.imaging.decode import decode_bytes

    def png(image: Image.Image) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        return buffer.getvalue()

    budget = DecodeOptions(max_bytes=decode_bytes((100, 100), "RGB"))
    assert decode_image(png(gradient(100, 100)), budget).size == (100, 100)
    # as many pixels, but 16-bit values or an alpha channel cost more to decode
    for wide in (Image.new("I;16", (100, 100)), gradient(100, 100).convert("RGBA")):
        with pytest.raises(ImageDecodeError, match=f"{wide.mode} pixels .* over the limit"):
            decode_image(png(wide), budget)
    # a JPEG is drafted under the byte budget instead
    drafted = decode_image(jpeg_bytes(gradient(200, 200)), budget)
    assert drafted.size == (100, 100)


def test_16_bit_values_are_scaled_to_8_bits() -> None:
    values = (np.arange(60 * 40, dtype=np.uint16).reshape(40, 60) * 27).astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, "PNG")
    decoded = np.asarray(decode_image(buffer.getvalue()))[..., 0].astype(int)
    expected = np.rint(values.astype(np.float64) * 255 / values.max()).astype(int)
    assert np.abs(decoded - expected).max() <= 1 and decoded.max() == 255


def test_draft_decode_keeps_full_size_for_boxes() -> None:
    from pixseek.imaging.decode import decode_image_sized

    big = jpeg_bytes(gradient(2000, 1200))
    image, size = decode_image_sized(big, DecodeOptions(draft_size=448))
    assert size == (2000, 1200)
    # the largest JPEG scale-down (1/2) that keeps both sides at least 448 pixels
    assert image.size == (1000, 600)
