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

from pixseek.core.errors import StorageError
from pixseek.core.filters import Filter
from pixseek.core.records import Record
from pixseek.core.vectors import Vectors
from pixseek.stores.base import ScoredRecords, check_vectors, chunks
from pixseek.stores.lance.ann import HnswSidecar
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
ANN_FROM = 50_000  # rows; below this exact search is fast enough and always right
ANN_CANDIDATES = 4  # HNSW candidates per wanted hit, re-ranked exactly
EXACT_SELECTIVITY = 0.1  # filters matching fewer rows than this share search exactly
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
        self._ann = HnswSidecar(Path(str(directory)), table, dim)
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
        check_vectors(records, vectors, self._dim)
        data = records_to_arrow(records, vectors, self._dim)
        in_sync = self._ann_in_sync()
        (
            self._table.merge_insert("id")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute(data)
        )
        if in_sync:
            self._ann.add([r.id for r in records], np.asarray(vectors, np.float32))
            self._ann.version = self._table.version

    def delete(self, ids: Sequence[str]) -> None:
        for chunk in chunks(ids, ID_CHUNK):
            in_sync = self._ann_in_sync()
            self._table.delete(id_clause(chunk))
            if in_sync:
                self._ann.remove(chunk)
                self._ann.version = self._table.version

    def delete_where(self, flt: Filter) -> None:
        sql = to_sql(flt)
        if sql is None:
            raise StorageError("refusing to delete with an empty filter")
        if self._ann_in_sync():
            ids = [r.id for batch, _ in self.scan(flt) for r in batch]
            self.delete(ids)
            return
        self._table.delete(sql)

    def _ann_in_sync(self) -> bool:
        """Whether the HNSW graph holds exactly this table version (loading it if saved)."""
        if not self._ann.available:
            return False  # no graph, none saved: small tables skip the version lookup
        version = self._table.version
        if self._ann.ready and self._ann.version == version:
            return True
        return self._ann.load(version)

    def _select(self, where: str, columns: list[str] | None = None) -> Any:
        query = self._table.search().where(where).limit(None)
        if columns is not None:
            query = query.select(columns)
        return query.to_arrow()

    def get(self, ids: Sequence[str]) -> dict[str, Record]:
        found: dict[str, Record] = {}
        for chunk in chunks(ids, ID_CHUNK):
            for record in arrow_to_records(self._select(id_clause(chunk))):
                found[record.id] = record
        return found

    def get_vectors(self, ids: Sequence[str]) -> dict[str, Vectors]:
        found: dict[str, Vectors] = {}
        for chunk in chunks(ids, ID_CHUNK):
            table = self._select(id_clause(chunk), ["id", VECTOR])
            for record_id, vector in zip(
                table.column("id").to_pylist(), arrow_vectors(table), strict=True
            ):
                found[record_id] = vector
        return found

    def search(self, vector: Vectors, k: int, flt: Filter | None = None) -> ScoredRecords:
        """Exact below ``ANN_FROM`` rows and for selective filters; HNSW candidates re-ranked
        exactly otherwise, falling back to exact search whenever fewer than k survive."""
        if self._ann_in_sync():
            hits = self._ann_search(vector, k, flt)
            if hits is not None:
                return hits
        return self._exact_search(vector, k, flt)

    def _ann_search(self, vector: Vectors, k: int, flt: Filter | None) -> ScoredRecords | None:
        total = self._ann.size  # the graph holds exactly the table's rows
        share = 1.0 if not flt else self.count(flt) / max(total, 1)
        if share < EXACT_SELECTIVITY:
            return None
        wanted = min(total, int(k * ANN_CANDIDATES / share) + 1)
        candidates = self._ann.query(vector, wanted)
        if not candidates:
            return None
        where = id_clause(candidates)
        sql = to_sql(flt)
        table = self._select(f"({where}) AND ({sql})" if sql else where)
        if table.num_rows < min(k, int(total * share)):
            return None
        vectors = arrow_vectors(table)
        scores = vectors @ np.asarray(vector, dtype=np.float32)
        order = np.argsort(-scores, kind="stable")[:k]
        records = arrow_to_records(table)
        return [(records[i], float(scores[i])) for i in order]

    def _exact_search(self, vector: Vectors, k: int, flt: Filter | None) -> ScoredRecords:
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
        self._ann.discard()

    def refresh(self) -> None:
        self._table.checkout_latest()

    def persist(self) -> None:
        """Compact, fold new rows into the indices, index ids once the table is large, and
        bring the HNSW graph up to date (built once the table reaches ``ANN_FROM`` rows)."""
        in_sync = self._ann_in_sync()
        self._table.optimize()
        count = self.count()
        if count >= ID_INDEX_FROM and not self._indexed("id"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the scalar-index call is marked deprecated
                self._table.create_scalar_index("id", index_type="BTREE")
        if count < ANN_FROM:
            return
        if not in_sync:
            ids, parts = [], []
            for batch, vectors in self.scan(with_vectors=True):
                assert vectors is not None
                ids += [r.id for r in batch]
                parts.append(vectors)
            self._ann.build(ids, np.concatenate(parts), self._table.version)
        self._ann.save(self._table.version)

    def _indexed(self, column: str) -> bool:
        return any(list(index.columns) == [column] for index in self._table.list_indices())
