"""The embedded default store: one LanceDB table per (collection, model), no server.

Every write is one Lance commit (a new table version), so a crash mid-write
leaves the previous version intact and readers never see half a batch.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pixseek.core.errors import StorageError, WrongModelError
from pixseek.core.filters import Filter
from pixseek.core.records import Record
from pixseek.core.vectors import Vectors
from pixseek.stores.base import ScoredRecords
from pixseek.stores.lance.schema import (
    FILTER_COLUMNS,
    RENAMED,
    VECTOR,
    arrow_to_records,
    arrow_vectors,
    metadata_columns,
    record_schema,
    records_to_arrow,
)
from pixseek.stores.lance.sql import id_clause, to_sql

ID_CHUNK = 500
SCAN_BATCH = 4096
ID_INDEX_FROM = 10_000  # rows; below this a scan is as fast as the index
# How stale a reader's view of the table may be: writes by other processes (a CLI
# index beside a running server) become visible within this interval.
READ_CONSISTENCY = timedelta(seconds=1)


class LanceStore:
    def __init__(self, directory: Path | str, table: str, dim: int) -> None:
        import lancedb

        self._dim = dim
        self._name = table
        self._db = lancedb.connect(str(directory), read_consistency_interval=READ_CONSISTENCY)
        try:
            self._table = self._db.open_table(table)
        except (FileNotFoundError, ValueError):
            self._table = self._db.create_table(table, schema=record_schema(dim), exist_ok=True)
        self._upgrade_columns()
        stored_dim = self._table.schema.field(VECTOR).type.list_size
        if stored_dim != dim:
            raise StorageError(f"table {table!r} holds {stored_dim}-d vectors, expected {dim}")

    def _upgrade_columns(self) -> None:
        """Tables written by older versions: rename columns to today's field names."""
        names = set(self._table.schema.names)
        for old, new in RENAMED.items():
            if old in names and new not in names:
                self._table.alter_columns({"path": old, "rename": new})  # type: ignore[dict-item]
        missing = {name: kind for name, kind in FILTER_COLUMNS.items() if name not in names}
        if missing:  # filter columns added since: null for the rows already written
            self._table.add_columns(pa.schema(list(missing.items())))

    @property
    def dim(self) -> int:
        return self._dim

    def upsert(self, records: Sequence[Record], vectors: Vectors) -> None:
        if not records:
            return
        if vectors.shape != (len(records), self._dim):
            raise WrongModelError(
                f"vectors of shape {vectors.shape} do not fit this store "
                f"({len(records)} records of dimension {self._dim})"
            )
        data = records_to_arrow(records, vectors, self._dim)
        (
            self._table.merge_insert("id")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute(data)
        )

    def delete(self, ids: Sequence[str]) -> None:
        for chunk in _chunks(list(ids)):
            self._table.delete(id_clause(chunk))

    def delete_where(self, flt: Filter) -> None:
        sql = to_sql(flt)
        if sql is None:
            raise StorageError("refusing to delete with an empty filter")
        self._table.delete(sql)

    def _select(self, where: str, columns: list[str] | None = None) -> Any:
        query = self._table.search().where(where).limit(None)
        if columns is not None:
            query = query.select(columns)
        return query.to_arrow()

    def get(self, ids: Sequence[str]) -> dict[str, Record]:
        found: dict[str, Record] = {}
        for chunk in _chunks(list(ids)):
            for record in arrow_to_records(self._select(id_clause(chunk))):
                found[record.id] = record
        return found

    def get_vectors(self, ids: Sequence[str]) -> dict[str, Vectors]:
        found: dict[str, Vectors] = {}
        for chunk in _chunks(list(ids)):
            table = self._select(id_clause(chunk), ["id", VECTOR])
            for record_id, vector in zip(
                table.column("id").to_pylist(), arrow_vectors(table), strict=True
            ):
                found[record_id] = vector
        return found

    def search(self, vector: Vectors, k: int, flt: Filter | None = None) -> ScoredRecords:
        query: Any = self._table.search(
            np.asarray(vector, dtype=np.float32), vector_column_name=VECTOR
        )
        query = query.distance_type("cosine").limit(k)
        sql = to_sql(flt)
        if sql is not None:
            query = query.where(sql, prefilter=True)
        table = query.to_arrow()
        scores = 1.0 - table.column("_distance").to_numpy(zero_copy_only=False)
        return list(zip(arrow_to_records(table), (float(s) for s in scores), strict=True))

    def count(self, flt: Filter | None = None) -> int:
        return int(self._table.count_rows(to_sql(flt)))

    def scan(
        self, flt: Filter | None = None, with_vectors: bool = False
    ) -> Iterator[tuple[list[Record], Vectors | None]]:
        import pyarrow as pa

        columns = metadata_columns() + ([VECTOR] if with_vectors else [])
        query = self._table.search().limit(None).select(columns)
        sql = to_sql(flt)
        if sql is not None:
            query = query.where(sql)
        for batch in query.to_batches(batch_size=SCAN_BATCH):
            table = pa.Table.from_batches([batch])
            yield arrow_to_records(table), arrow_vectors(table) if with_vectors else None

    def page(self, flt: Filter | None, offset: int, limit: int) -> list[Record]:
        query = self._table.search().offset(offset).limit(limit)
        sql = to_sql(flt)
        if sql is not None:
            query = query.where(sql)
        return arrow_to_records(query.select(metadata_columns()).to_arrow())

    def drop(self) -> None:
        self._db.drop_table(self._name)

    def refresh(self) -> None:
        self._table.checkout_latest()

    def persist(self) -> None:
        """Compact, fold new rows into the indices, and index ids once the table is large."""
        self._table.optimize()
        if self.count() >= ID_INDEX_FROM and not self._indexed("id"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the scalar-index call is marked deprecated
                self._table.create_scalar_index("id", index_type="BTREE")

    def _indexed(self, column: str) -> bool:
        return any(list(index.columns) == [column] for index in self._table.list_indices())


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), ID_CHUNK):
        yield ids[start : start + ID_CHUNK]
