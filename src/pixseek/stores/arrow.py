"""The Arrow type of every record field, and record columns: shared by stores and exports.

Derived from :class:`Record`; a field without a type here fails at import.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from pixseek.core.records import RECORD_FIELDS, Record

FIELD_TYPES: dict[str, pa.DataType] = {
    "id": pa.string(),
    "kind": pa.string(),
    "image_id": pa.string(),
    "path": pa.string(),
    "width": pa.int32(),
    "height": pa.int32(),
    "box": pa.list_(pa.float64(), 4),
    "label": pa.string(),
    "source": pa.string(),
    "confidence": pa.float64(),
    "metadata": pa.string(),  # JSON: free keys, any depth
    "content_hash": pa.string(),
    "source_hash": pa.string(),
    "hashes": pa.string(),
}
if set(FIELD_TYPES) != set(RECORD_FIELDS):
    raise AssertionError(f"record columns {sorted(FIELD_TYPES)} != fields {RECORD_FIELDS}")


def record_column(records: Sequence[Record], name: str) -> list[Any]:
    if name == "box":
        return [list(r.box) if r.box is not None else None for r in records]
    if name == "metadata":
        return [json.dumps(dict(r.metadata), sort_keys=True, default=str) for r in records]
    return [getattr(r, name) for r in records]
