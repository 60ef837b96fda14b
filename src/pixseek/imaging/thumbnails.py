"""Small JPEG previews of an image or of a box inside it."""

from __future__ import annotations

import io
from pathlib import Path

from pixseek.core.records import BoxTuple
from pixseek.imaging.decode import DecodeOptions, load_image_file


def render_thumbnail(
    path: Path, size: int, box: BoxTuple | None = None, full_size: tuple[int, int] | None = None
) -> bytes:
    """JPEG bytes at most ``size`` pixels on the longer side; ``box`` is in ``full_size`` pixels."""
    image = load_image_file(path, DecodeOptions(draft_size=size))
    if box is not None:
        width, height = full_size or image.size
        x, y, w, h = box
        sx, sy = image.width / max(width, 1), image.height / max(height, 1)
        image = image.crop((int(x * sx), int(y * sy), int((x + w) * sx) + 1, int((y + h) * sy) + 1))
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()
