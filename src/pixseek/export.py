"""Export a collection's records and vectors to Parquet, streamed batch by batch."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pixseek.collection import Collection

EXPORT_COLUMNS = ("id", "kind", "image_id", "path", "box", "label", "source", "score", "metadata")


def export_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            ("id", pa.string()),
            ("kind", pa.string()),
            ("image_id", pa.string()),
            ("path", pa.string()),
            ("box", pa.list_(pa.float64(), 4)),
            ("label", pa.string()),
            ("source", pa.string()),
            ("score", pa.float64()),
            ("metadata", pa.string()),
            ("vector", pa.list_(pa.float32(), dim)),
        ]
    )


def export_parquet(collection: Collection, out: Path) -> int:
    """Write every record with its vector; the file appears only when complete."""
    dim = collection.manifest.model_entry.dim
    schema = export_schema(dim)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    written = 0
    with pq.ParquetWriter(partial, schema) as writer:
        for records, vectors in collection.store.scan(with_vectors=True):
            assert vectors is not None
            columns = {
                "id": [r.id for r in records],
                "kind": [r.kind for r in records],
                "image_id": [r.image_id for r in records],
                "path": [r.path for r in records],
                "box": [list(r.box) if r.box else None for r in records],
                "label": [r.label for r in records],
                "source": [r.source for r in records],
                "score": [r.score for r in records],
                "metadata": [json.dumps(dict(r.metadata), sort_keys=True) for r in records],
            }
            arrays = [
                pa.array(columns[name], type=schema.field(name).type) for name in EXPORT_COLUMNS
            ]
            arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim))
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            written += len(records)
    os.replace(partial, out)
    return written
