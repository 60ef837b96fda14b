"""Stable ids: re-indexing the same input yields the same ids, so nothing is added twice."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from pixseek.core.records import BoxTuple, Record

ID_BYTES = 8


def _digest(*parts: str) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=ID_BYTES).hexdigest()


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def in_content_order(records: Iterable[Record], salt: str) -> list[Record]:
    """``records`` in an order fixed by a hash of their pictures' content (and ``salt``):
    the same images give the same sample wherever they are."""
    return sorted(records, key=lambda r: (content_hash(f"{salt}:{r.content_hash}".encode()), r.id))


def holdout_split(digest: str, fraction: float) -> str:
    """``test`` for a stable ``fraction`` of content hashes, ``train`` for the rest."""
    return "test" if int(digest[:8], 16) < fraction * 0x1_0000_0000 else "train"


def image_id_for_uri(uri: str) -> str:
    """Ids follow the image's location (an absolute path or a URL); its content hash
    tells when it changed."""
    return _digest("path", uri)


def object_id(image_id: str, box: BoxTuple, label: str | None, source: str, key: str = "") -> str:
    box_text = ",".join(f"{value:.2f}" for value in box)
    return _digest("object", image_id, box_text, label or "", source, key)
