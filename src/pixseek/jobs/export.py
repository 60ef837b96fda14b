"""Export an index's records and vectors, streamed batch by batch.

The file's extension chooses the format: ``.parquet``, ``.csv`` or ``.jsonl``.
Columns are every field of :class:`Record`, then the values it derives from its
metadata (``split``, ``outcome``, ``tags``: what stores filter on), then the
vector; a record field added later appears here without a change. In Parquet,
``metadata`` is JSON text and lists are lists. In CSV every list (``box``,
``tags``, ``vector``) and ``metadata`` is JSON text in its cell, and an absent
value is an empty cell. In JSON Lines each line is one record's JSON object.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, get_type_hints

import pyarrow as pa
import pyarrow.parquet as pq

from pixseek.collection.collection import Collection
from pixseek.collection.index import Index
from pixseek.core.errors import InvalidInputError
from pixseek.core.records import RECORD_FIELDS, Record
from pixseek.core.vectors import Vectors
from pixseek.stores.arrow import FIELD_TYPES, record_column

EXPORT_FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl"}
VECTOR = "vector"


def _derived_fields() -> dict[str, pa.DataType]:
    """The properties of :class:`Record` and the Arrow type of what each returns."""
    types: dict[object, pa.DataType] = {
        str | None: pa.string(),
        str: pa.string(),
        list[str]: pa.list_(pa.string()),
    }
    derived = {}
    for name, attribute in vars(Record).items():
        if isinstance(attribute, property) and attribute.fget is not None:
            returns = get_type_hints(attribute.fget)["return"]
            if returns not in types:
                raise AssertionError(f"no export type for Record.{name} -> {returns}")
            derived[name] = types[returns]
    return derived


DERIVED_TYPES = _derived_fields()
EXPORT_COLUMNS: tuple[str, ...] = (*RECORD_FIELDS, *DERIVED_TYPES)
COLUMN_TYPES: dict[str, pa.DataType] = {**FIELD_TYPES, **DERIVED_TYPES}


def export_format(out: Path) -> str:
    """``parquet``, ``csv`` or ``jsonl`` from the file's extension; anything else is refused."""
    found = EXPORT_FORMATS.get(out.suffix.lower())
    if found is None:
        raise InvalidInputError(
            f"cannot tell the export format from {out.name!r}: name the file "
            f"{', '.join(EXPORT_FORMATS)} (Parquet, CSV or JSON Lines)"
        )
    return found


def export_schema(dim: int) -> pa.Schema:
    fields = [(name, COLUMN_TYPES[name]) for name in EXPORT_COLUMNS]
    return pa.schema([*fields, (VECTOR, pa.list_(pa.float32(), dim))])


def export_records(
    collection: Collection, out: Path, index: Index | None = None, format: str | None = None
) -> int:
    """Write every record with its vector, as ``format`` or as ``out``'s extension names.

    The file appears only when complete. Returns how many records were written.
    """
    write = _WRITERS[format or export_format(out)]
    index = index or collection.index()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    try:
        written = write(partial, index.dim, _batches(index))
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, out)
    return written


def export_parquet(collection: Collection, out: Path, index: Index | None = None) -> int:
    return export_records(collection, out, index, format="parquet")


Batches = Iterator[tuple[list[Record], Vectors]]


def _batches(index: Index) -> Batches:
    for records, vectors in index.store.scan(with_vectors=True):
        assert vectors is not None
        yield records, vectors


def _write_parquet(path: Path, dim: int, batches: Batches) -> int:
    schema = export_schema(dim)
    written = 0
    with pq.ParquetWriter(path, schema) as writer:
        for records, vectors in batches:
            arrays = [
                pa.array(_column(records, name), type=COLUMN_TYPES[name]) for name in EXPORT_COLUMNS
            ]
            flat = pa.array(vectors.reshape(-1), pa.float32())
            arrays.append(pa.FixedSizeListArray.from_arrays(flat, dim))
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            written += len(records)
    return written


def _write_csv(path: Path, dim: int, batches: Batches) -> int:
    written = 0
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow([*EXPORT_COLUMNS, VECTOR])
        for records, vectors in batches:
            for record, vector in zip(records, vectors, strict=True):
                cells = [_cell(value) for value in _values(record).values()]
                writer.writerow([*cells, _vector_json(vector)])
            written += len(records)
    return written


def _write_jsonl(path: Path, dim: int, batches: Batches) -> int:
    written = 0
    with path.open("w", encoding="utf-8") as file:
        for records, vectors in batches:
            for record, vector in zip(records, vectors, strict=True):
                head = json.dumps(_values(record), ensure_ascii=False, default=str)
                file.write(f'{head[:-1]}, "{VECTOR}": {_vector_json(vector)}}}\n')
            written += len(records)
    return written


_WRITERS: dict[str, Callable[[Path, int, Batches], int]] = {
    "parquet": _write_parquet,
    "csv": _write_csv,
    "jsonl": _write_jsonl,
}


def _column(records: Sequence[Record], name: str) -> list[Any]:
    if name in FIELD_TYPES:
        return record_column(records, name)
    return [getattr(record, name) for record in records]


def _values(record: Record) -> dict[str, Any]:
    values = {name: getattr(record, name) for name in EXPORT_COLUMNS}
    values["box"] = list(record.box) if record.box is not None else None
    values["metadata"] = dict(record.metadata)
    return values


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return value


def _vector_json(vector: Vectors) -> str:
    """A JSON list with the shortest text that reads back as the same float32 values."""
    return "[" + ", ".join(str(value) for value in vector) + "]"
