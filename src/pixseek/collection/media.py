"""Files behind records: uploads the collection owns, and cached thumbnails."""

from __future__ import annotations

import bisect
import contextlib
import os
import threading
from pathlib import Path

from pixseek.collection.atomic import write_atomic
from pixseek.collection.collection import Collection
from pixseek.core.errors import ImageDecodeError, InvalidInputError
from pixseek.core.ids import content_hash
from pixseek.core.paths import local_path
from pixseek.core.records import Record
from pixseek.imaging.thumbnails import render_thumbnail

MIN_SIZE, MAX_SIZE = 16, 1024
# Thumbnails are made in these sizes only: a request is rounded up to the next one, so an
# image has at most this many cached files whatever sizes clients ask for.
THUMBNAIL_SIZES = (64, 128, 256, 512, 1024)
DEFAULT_THUMBNAIL_CACHE_BYTES = 256 * 1024 * 1024
_cache_lock = threading.Lock()
_cache_bytes: dict[Path, int] = {}  # bytes in each thumbnail folder, as last counted here


def record_file(record: Record) -> Path:
    """The image file of a record (an object's is its image's)."""
    path = local_path(record.path)
    if not path.is_file():
        raise ImageDecodeError(f"the file of {record.id!r} is no longer readable: {path}")
    return path


def source_file(collection: Collection, record_id: str) -> Path:
    """The file behind a record: looked up by id, never by a path from the caller."""
    return record_file(collection.get(record_id))


def thumbnail_size(size: int) -> int:
    """The fixed size a request for ``size`` pixels is served at (the next one up)."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise InvalidInputError(f"thumbnail size must be {MIN_SIZE}..{MAX_SIZE}, got {size}")
    return THUMBNAIL_SIZES[bisect.bisect_left(THUMBNAIL_SIZES, size)]


def thumbnail_data(
    collection: Collection,
    record_id: str,
    size: int = 256,
    cache_bytes: int = DEFAULT_THUMBNAIL_CACHE_BYTES,
) -> bytes:
    """JPEG bytes at most ``size`` pixels on the longer side (of the image, or the
    object's box), ``size`` rounded up to one of :data:`THUMBNAIL_SIZES`.

    Rendered thumbnails are cached in the collection; past ``cache_bytes`` the least
    recently used are removed.
    """
    fixed = thumbnail_size(size)
    record = collection.get(record_id)
    cached = _cached_path(collection, record, fixed)
    try:
        data = cached.read_bytes()
    except FileNotFoundError:
        pass
    else:
        with contextlib.suppress(FileNotFoundError):
            os.utime(cached)  # recently used: evicted last
        return data
    data = render_thumbnail(record_file(record), fixed, record.box, (record.width, record.height))
    write_atomic(cached, data)
    _account(cached, len(data), cache_bytes)
    return data


def _cached_path(collection: Collection, record: Record, size: int) -> Path:
    return collection.layout.thumbnails / f"{record.id}-{record.content_hash[:12]}-{size}.jpg"


def _account(written: Path, added: int, limit: int) -> None:
    """Count the ``added`` bytes just ``written`` into its folder's cache, and evict
    others when the folder is over ``limit``."""
    folder = written.parent
    with _cache_lock:
        known = _cache_bytes.get(folder)
        total = _folder_bytes(folder) if known is None else known + added
        if total > limit:
            total = _evict(folder, limit, written)
        _cache_bytes[folder] = total


def _folder_bytes(folder: Path) -> int:
    return sum(size for _, size, _ in _entries(folder))


def _entries(folder: Path) -> list[tuple[int, int, Path]]:
    entries = []
    for path in folder.glob("*.jpg"):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        entries.append((stat.st_mtime_ns, stat.st_size, path))
    return entries


def _evict(folder: Path, limit: int, keep: Path) -> int:
    """Remove the least recently used thumbnails but ``keep`` until ``folder`` holds at
    most ``limit`` bytes (or only ``keep``); returns what it holds then."""
    entries = sorted(_entries(folder))
    total = sum(size for _, size, _ in entries)
    for _, size, path in entries:
        if total <= limit:
            break
        if path != keep:
            path.unlink(missing_ok=True)
            total -= size
    return total


def store_owned_file(collection: Collection, data: bytes, suffix: str) -> Path:
    """Keep uploaded bytes inside the collection, named by content: same bytes, one file."""
    target = collection.layout.files / (content_hash(data) + suffix)
    if not target.exists():
        write_atomic(target, data)
    return target


def owned_file(collection: Collection, path: str) -> bool:
    """Whether ``path`` is a file the collection stored itself (an upload)."""
    return Path(path).resolve().is_relative_to(collection.layout.files.resolve())
