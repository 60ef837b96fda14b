"""Stable ids: re-indexing the same input yields the same ids, so nothing is added twice."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pixseek.records import BoxTuple

ID_BYTES = 8


def _digest(*parts: str) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=ID_BYTES).hexdigest()


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def image_id_for_path(path: Path) -> str:
    """Ids follow the file's absolute path; its content hash tells when it changed."""
    return _digest("path", str(path.resolve()))


def image_id_for_content(digest: str) -> str:
    """For uploads, which have no path of their own: the same bytes give the same id."""
    return _digest("content", digest)


def object_id(image_id: str, box: BoxTuple, label: str | None, source: str, key: str = "") -> str:
    box_text = ",".join(f"{value:.2f}" for value in box)
    return _digest("object", image_id, box_text, label or "", source, key)
