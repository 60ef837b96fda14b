"""Files behind records: uploads the collection owns, and cached thumbnails."""

from __future__ import annotations

from pathlib import Path

from pixseek.collection.atomic import write_atomic
from pixseek.collection.collection import Collection
from pixseek.core.errors import ImageDecodeError, InvalidInputError
from pixseek.core.ids import content_hash
from pixseek.core.records import Record
from pixseek.imaging.thumbnails import render_thumbnail

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
    cached = collection.layout.thumbnails / f"{record.id}-{record.content_hash[:12]}-{size}.jpg"
    if not cached.is_file():
        data = render_thumbnail(
            record_file(record), size, record.box, (record.width, record.height)
        )
        write_atomic(cached, data)
    return cached


def store_owned_file(collection: Collection, data: bytes, suffix: str) -> Path:
    """Keep uploaded bytes inside the collection, named by content: same bytes, one file."""
    target = collection.layout.files / (content_hash(data) + suffix)
    if not target.exists():
        write_atomic(target, data)
    return target


def owned_file(collection: Collection, path: str) -> bool:
    """Whether ``path`` is a file the collection stored itself (an upload)."""
    return Path(path).resolve().is_relative_to(collection.layout.files.resolve())
