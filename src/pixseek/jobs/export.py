"""Export an index's records and vectors to Parquet, streamed batch by batch.

Columns are the public fields of :class:`Record` (metadata as JSON text) and the
vector; a record field added later appears here without a change.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pixseek.collection.collection import Collection
from pixseek.collection.index import Index
from pixseek.core.records import PUBLIC_FIELDS
from pixseek.stores.arrow import FIELD_TYPES, record_column


def export_schema(dim: int) -> pa.Schema:
    fields = [(name, FIELD_TYPES[name]) for name in PUBLIC_FIELDS]
    return pa.schema([*fields, ("vector", pa.list_(pa.float32(), dim))])


def export_parquet(collection: Collection, out: Path, index: Index | None = None) -> int:
    """Write every record with its vector; the file appears only when complete."""
    index = index or collection.index()
    schema = export_schema(index.dim)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    written = 0
    with pq.ParquetWriter(partial, schema) as writer:
        for records, vectors in index.store.scan(with_vectors=True):
            assert vectors is not None
            arrays = [
                pa.array(record_column(records, name), type=FIELD_TYPES[name])
                for name in PUBLIC_FIELDS
            ]
            flat = pa.array(vectors.reshape(-1), pa.float32())
            arrays.append(pa.FixedSizeListArray.from_arrays(flat, index.dim))
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            written += len(records)
    os.replace(partial, out)
    return written
