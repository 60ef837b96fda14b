"""Atomic file writes: a reader sees the old file or the complete new one, never a part."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomic(target: Path, data: bytes, durable: bool = False) -> None:
    """Write ``data`` to a temporary file beside ``target`` and rename it into place.

    ``durable`` also flushes to disk before the rename, for files whose loss after
    a power cut would matter (the manifest), not for caches.
    """
    write_atomic_with(target, lambda handle: handle.write(data), durable)


def write_atomic_with(
    target: Path, write: Callable[[BinaryIO], object], durable: bool = False
) -> None:
    """As :func:`write_atomic`, with ``write`` filling the open file: a large file (kept
    vectors) is written as it is made, not first built in memory."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
