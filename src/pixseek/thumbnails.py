"""Thumbnails of indexed images, cached on disk inside the collection."""

from __future__ import annotations

import io
from pathlib import Path

from pixseek.collection import Collection
from pixseek.errors import ImageDecodeError, InvalidInputError
from pixseek.files import write_atomic
from pixseek.imaging import DecodeOptions, load_image_file
from pixseek.records import Record

MIN_SIZE, MAX_SIZE = 16, 1024


def record_file(record: Record) -> Path:
    """The image file of a record (an object's is its image's)."""
    path = Path(record.path)
    if not path.is_file():
        raise ImageDecodeError(f"the file of {record.id!r} is no longer readable: {path}")
    return path


def source_file(collection: Collection, record_id: str) -> Path:
    """The file behind a record: looked up by id, never by a path from the caller."""
    return record_file(collection.get(record_id))


def thumbnail(collection: Collection, record_id: str, size: int = 256) -> Path:
    """A JPEG at most ``size`` pixels on its longer side (of the image, or the object's box)."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise InvalidInputError(f"thumbnail size must be {MIN_SIZE}..{MAX_SIZE}, got {size}")
    record = collection.get(record_id)
    folder = collection.root / "thumbnails"
    cached = folder / f"{record.id}-{record.content_hash[:12]}-{size}.jpg"
    if cached.is_file():
        return cached
    image = load_image_file(record_file(record), DecodeOptions(draft_size=size))
    if record.box is not None:
        x, y, w, h = record.box
        sx, sy = image.width / record.width, image.height / record.height
        image = image.crop((int(x * sx), int(y * sy), int((x + w) * sx) + 1, int((y + h) * sy) + 1))
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    write_atomic(cached, buffer.getvalue())
    return cached
