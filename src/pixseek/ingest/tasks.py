"""What flows from sources into the ingest stages: one task per image.

A task carries the image's URI (an absolute path or a URL: the record's path and
the id derive from it) and a reader that fetches its bytes, so a folder, a COCO
file, an upload or a URL list feed the same stages, locally or on a cluster.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from pixseek.core.paths import stored_path
from pixseek.core.records import BoxTuple
from pixseek.imaging.decode import DEFAULT_MAX_FILE_BYTES, read_image_bytes

Reader = Callable[[], bytes]


@dataclass(frozen=True, slots=True)
class ObjectSpec:
    box: BoxTuple
    label: str | None = None
    source: str = "gt"
    confidence: float | None = None
    key: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    id: str = ""  # a stored object's own id, when re-embedding it (reindex)


@dataclass(frozen=True, slots=True)
class ImageTask:
    """One image to index. ``objects=None`` leaves its stored objects untouched.

    ``signature`` replaces the hash of metadata and objects that decides whether a
    stored image is up to date; a reindex carries the catalog's own. ``holdout`` puts that
    fraction of images (without a split of their own) in ``split=test`` and the others in
    ``split=train``, chosen by content hash, so copies of one image share a split.
    """

    uri: str
    read: Reader
    metadata: Mapping[str, Any] = field(default_factory=dict)
    objects: tuple[ObjectSpec, ...] | None = None
    expected_size: tuple[int, int] | None = None
    signature: str = ""
    holdout: float = 0.0

    @classmethod
    def for_file(
        cls, path: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES, **fields: Any
    ) -> ImageTask:
        return cls(
            uri=absolute_uri(path), read=partial(read_image_bytes, path, max_bytes), **fields
        )


def absolute_uri(path: Path) -> str:
    """The resolved absolute path, as stored text (see :mod:`pixseek.core.paths`); a broken
    link or a symlink loop keeps its own path."""
    try:
        return stored_path(str(path.resolve()))
    except (OSError, RuntimeError):
        return stored_path(os.path.abspath(path))


def sample_files(source: Source, limit: int = 48, look_at: int = 400) -> list[Path]:
    """Local image files among the source's first tasks, spread out: a calibration sample."""
    import itertools

    uris = [task.uri for task in itertools.islice(source.tasks(), look_at)]
    files = [Path(uri) for uri in uris if "://" not in uri]
    step = max(1, len(files) // limit)
    return files[::step][:limit]


class Source(Protocol):
    def tasks(self) -> Iterator[ImageTask]: ...

    def count(self) -> int | None:
        """How many tasks there will be, when cheap to know (for progress and ETA)."""
