"""The Arrow layout of a record table and conversions to and from :class:`Record`.

Columns follow :data:`RECORD_FIELDS` with the types of :mod:`pixseek.stores.arrow`,
plus ``split`` and ``tags`` copied out of the metadata so that they can be
filtered, and the vector.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from pixseek.core.records import RECORD_FIELDS, Record
from pixseek.core.vectors import Vectors
from pixseek.stores.arrow import FIELD_TYPES, record_column

VECTOR = "vector"
FILTER_COLUMNS: dict[str, pa.DataType] = {
    "split": pa.string(),
    "tags": pa.list_(pa.string()),
    "outcome": pa.string(),
}
REQUIRED = frozenset({"id", "kind", "image_id"})
RENAMED = {"score": "confidence"}  # columns of older tables: old name -> field
# Schema metadata of tables created with stable row ids (older tables lack it).
STABLE_ROW_IDS = {b"pixseek.row_ids": b"stable"}


def record_schema(dim: int) -> pa.Schema:
    fields = [pa.field(n, FIELD_TYPES[n], nullable=n not in REQUIRED) for n in RECORD_FIELDS]
    fields += [pa.field(name, kind) for name, kind in FILTER_COLUMNS.items()]
    vector = pa.field(VECTOR, pa.list_(pa.float32(), dim))
    return pa.schema([*fields, vector], metadata=STABLE_ROW_IDS)


def metadata_columns() -> list[str]:
    """Every column but the vector: what reading records needs."""
    return [*RECORD_FIELDS, *FILTER_COLUMNS]


def records_to_arrow(records: Sequence[Record], vectors: Vectors, dim: int) -> pa.Table:
    flat = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1)
    schema = record_schema(dim)
    arrays = [
        pa.array(record_column(records, f.name), type=f.type) for f in schema if f.name != VECTOR
    ]
    arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), dim))
    return pa.Table.from_arrays(arrays, schema=schema)


def arrow_to_records(table: pa.Table) -> list[Record]:
    """Records from their columns, read a column at a time: a batch of searches returns
    tens of thousands of hits, and Arrow's row-wise conversion cost more than the graph
    walks did."""
    columns = [table.column(name).to_pylist() for name in RECORD_FIELDS]
    return [
        _record(dict(zip(RECORD_FIELDS, row, strict=True))) for row in zip(*columns, strict=True)
    ]


def _record(row: dict[str, Any]) -> Record:
    box, metadata = row["box"], row["metadata"]
    row["path"] = row["path"] or ""
    row["width"] = int(row["width"] or 0)
    row["height"] = int(row["height"] or 0)
    row["box"] = tuple(box) if box is not None else None
    row["metadata"] = json.loads(metadata) if metadata and metadata != "{}" else {}
    for name in ("content_hash", "source_hash", "hashes"):
        row[name] = row[name] or ""
    return Record(**row)


def arrow_vectors(table: pa.Table) -> Vectors:
    column = table.column(VECTOR).combine_chunks()
    dim = column.type.list_size
    values = column.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float32).reshape(-1, dim)
