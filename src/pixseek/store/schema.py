"""The Arrow layout of a record table and conversions to and from :class:`Record`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from pixseek.models.base import Vectors
from pixseek.records import Record

VECTOR = "vector"


def record_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("kind", pa.string(), nullable=False),
            pa.field("image_id", pa.string(), nullable=False),
            pa.field("path", pa.string()),
            pa.field("width", pa.int32()),
            pa.field("height", pa.int32()),
            pa.field("box", pa.list_(pa.float64(), 4)),
            pa.field("label", pa.string()),
            pa.field("source", pa.string()),
            pa.field("score", pa.float64()),
            pa.field("split", pa.string()),
            pa.field("tags", pa.list_(pa.string())),
            pa.field("metadata", pa.string()),
            pa.field("content_hash", pa.string()),
            pa.field("source_hash", pa.string()),
            pa.field(VECTOR, pa.list_(pa.float32(), dim)),
        ]
    )


def records_to_arrow(records: Sequence[Record], vectors: Vectors, dim: int) -> pa.Table:
    flat = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1)
    columns: dict[str, Any] = {
        "id": [r.id for r in records],
        "kind": [r.kind for r in records],
        "image_id": [r.image_id for r in records],
        "path": [r.path for r in records],
        "width": [r.width for r in records],
        "height": [r.height for r in records],
        "box": [list(r.box) if r.box is not None else None for r in records],
        "label": [r.label for r in records],
        "source": [r.source for r in records],
        "score": [r.score for r in records],
        "split": [r.split for r in records],
        "tags": [r.tags for r in records],
        "metadata": [json.dumps(dict(r.metadata), sort_keys=True, default=str) for r in records],
        "content_hash": [r.content_hash for r in records],
        "source_hash": [r.source_hash for r in records],
    }
    schema = record_schema(dim)
    arrays = [pa.array(columns[f.name], type=f.type) for f in schema if f.name != VECTOR]
    arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), dim))
    return pa.Table.from_arrays(arrays, schema=schema)


def arrow_to_records(table: pa.Table) -> list[Record]:
    data = table.select([name for name in record_schema(1).names if name != VECTOR]).to_pylist()
    return [_record(row) for row in data]


def _record(row: dict[str, Any]) -> Record:
    box = row["box"]
    return Record(
        id=row["id"],
        kind=row["kind"],
        image_id=row["image_id"],
        path=row["path"] or "",
        width=int(row["width"] or 0),
        height=int(row["height"] or 0),
        box=tuple(box) if box is not None else None,  # type: ignore[arg-type]
        label=row["label"],
        source=row["source"],
        score=row["score"],
        metadata=json.loads(row["metadata"] or "{}"),
        content_hash=row["content_hash"] or "",
        source_hash=row["source_hash"] or "",
    )


def arrow_vectors(table: pa.Table) -> Vectors:
    column = table.column(VECTOR).combine_chunks()
    dim = column.type.list_size
    values = column.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float32).reshape(-1, dim)
