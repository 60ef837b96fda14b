"""The embedded default store: one Lance dataset per (collection, model), no server.

Every write is one Lance commit (a new table version), so a crash mid-write
leaves the previous version intact and readers never see half a batch. Tables are
created with stable row ids, so that a large table's in-memory index
(:mod:`pixseek.stores.lance.memory`) can follow any writer by reading only the rows
written since the version it holds.

The datasets are LanceDB's tables (``DIR/TABLE.lance``), opened through the Lance
format library itself (``pylance``): it is what LanceDB runs on, and importing it costs
a fraction of LanceDB's client, which a one-shot CLI search would otherwise pay.
"""

from __future__ import annotations

import shutil
import threading
import time
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
from pixseek.stores.lance import ann
from pixseek.stores.lance.memory import ROWID, UPDATED_AT, MemoryIndex, full_scan_columns
from pixseek.stores.lance.schema import (
    RENAMED,
    STABLE_ROW_IDS,
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
# Lance reads ahead up to 2 GiB by default; a graph build that consumes more slowly than
# the disk reads would hold that much (measured: 670 MB peak scanning 300,000 rows; 440 MB)
SCAN_IO_BUFFER = 64 * 2**20
ID_INDEX_FROM = 10_000  # rows; below this a scan is as fast as the index
ANN_FROM = 50_000  # rows; below this exact search is fast enough and always right
FLAT_UP_TO = 2 * ANN_FROM  # rows held whole in memory and searched exactly without a graph
GRAPH_BATCH = 65_536  # rows read and inserted into the graph at a time when it is built
REBUILD_DEAD = 0.25  # a graph with this share of dead points is rebuilt at persist
# points a saved graph may hold beyond this handle's before it is loaded: another process
# folded them into its graph, and catching up would scan them all in the flat buffer
RELOAD_AFTER = 10_000
# How often a reader asks for the table's latest version (a listing of its versions):
# this process's own writes and ``refresh`` are seen at once, other processes' (a CLI
# index beside a running server) within this interval.
VERSION_CHECK_S = 0.25
CLEANUP_OLDER_THAN = timedelta(days=7)  # versions kept for readers pinned to old ones


class LanceStore:
    def __init__(self, directory: Path | str, table: str, dim: int) -> None:
        self._dim = dim
        self._name = table
        self._uri = f"{str(directory).rstrip('/')}/{table}.lance"
        self._dataset = _open_or_create(self._uri, dim)
        self._checked_at = time.monotonic()  # when the latest version was last looked up
        self._upgrade_columns()
        stored_dim = self._dataset.schema.field(VECTOR).type.list_size
        if stored_dim != dim:
            raise StorageError(f"table {table!r} holds {stored_dim}-d vectors, expected {dim}")
        metadata = self._dataset.schema.metadata or {}
        # tables created before stable row ids keep exact search (their row ids move)
        self._stable = all(metadata.get(k) == v for k, v in STABLE_ROW_IDS.items())
        self._graph_path = Path(str(directory)) / f"{table}.hnsw"
        self._memory_index: MemoryIndex | None = None
        self._unloadable: float | None = None  # mtime of a saved graph that did not load
        self._lock = threading.RLock()

    @property
    def _table(self) -> Any:
        """The dataset at its latest version, looked up at most every ``VERSION_CHECK_S``."""
        now = time.monotonic()
        if now - self._checked_at >= VERSION_CHECK_S:
            self._checked_at = now
            dataset = self._dataset
            latest = dataset.latest_version
            if latest != dataset.version:
                self._dataset = dataset.checkout_version(latest)
        return self._dataset

    def _upgrade_columns(self) -> None:
        """Tables written by older versions: rename columns to today's field names, add the
        columns of fields added since."""
        names = set(self._table.schema.names)
        for old, new in RENAMED.items():
            if old in names and new not in names:
                self._table.alter_columns({"path": old, "name": new})
        names = set(self._table.schema.names)
        wanted = record_schema(self._dim)
        missing = {f.name: f.type for f in wanted if f.name not in names and f.name != VECTOR}
        if missing:  # fields and filter columns added since: null for the rows already written
            self._table.add_columns(pa.schema(list(missing.items())))

    @property
    def dim(self) -> int:
        return self._dim

    def upsert(self, records: Sequence[Record], vectors: Vectors) -> None:
        if not records:
            return
        check_vectors(records, vectors, self._dim)
        data = records_to_arrow(records, vectors, self._dim)
        self._table.merge_insert(
            "id"
        ).when_matched_update_all().when_not_matched_insert_all().execute(data)

    def delete(self, ids: Sequence[str]) -> None:
        for chunk in chunks(ids, ID_CHUNK):
            self._table.delete(id_clause(chunk))

    def delete_where(self, flt: Filter) -> None:
        sql = to_sql(flt)
        if sql is None:
            raise StorageError("refusing to delete with an empty filter")
        self._table.delete(sql)

    def _select(self, where: str, columns: list[str] | None = None) -> Any:
        return self._table.to_table(columns=columns, filter=where)

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
        """From memory once the table has a graph (exact below ``ANN_FROM`` rows)."""
        return self.search_many(np.asarray(vector, np.float32)[None, :], k, flt)[0]

    def search_many(
        self, vectors: Vectors, k: int, flt: Filter | None = None
    ) -> list[ScoredRecords]:
        """The ``k`` nearest records of each query vector: one graph call for all of them
        (threads over queries), which is what jobs comparing many vectors want."""
        with self._lock:
            memory = self.memory_index()
            if memory is None:
                return [self._exact_search(v, k, flt) for v in vectors]
            return memory.scored(memory.search(vectors, k, flt))

    def memory_index(self) -> MemoryIndex | None:
        """The in-memory index brought up to the table's latest version, or None while the
        table has no saved graph (small tables, tables older than stable row ids)."""
        if not self._stable:
            return None
        with self._lock:
            memory = self._memory_index
            # the version is looked up at most every VERSION_CHECK_S (``_table``), and
            # compared every time: persist, which has just looked it up, catches up first
            version = self._table.version
            if memory is None:
                return self._load(version)
            if memory.version != version:
                if not memory.graph.size and ann.saved_stamp(self._graph_path) is not None:
                    return self._load(version)  # a graph was built since: use it
                if self._saved_is_larger(memory):
                    return self._load(version)
                self._catch_up(memory, version)
                if not memory.graph.size and memory.count > FLAT_UP_TO:
                    return self._load(version)  # grown past a flat scan, and still no graph
            return memory

    def _load(self, version: int) -> MemoryIndex | None:
        """The saved graph, the live rows' columns, and the rows written since the graph;
        without a graph, a table of at most ``FLAT_UP_TO`` rows is held whole in memory
        and searched exactly there."""
        self._memory_index = None
        pinned = self._pinned_at(version)
        loaded = self._saved_graph()
        if loaded is None:
            if int(pinned.count_rows()) > FLAT_UP_TO:
                return None
            building = ann.ExactVectors(ann.building_path(self._graph_path), self._dim)
            memory = MemoryIndex(ann.Graph(self._dim, building), 0)
            memory.apply(pinned.to_table(columns=full_scan_columns()), None, version)
        else:
            graph, since = loaded
            memory = MemoryIndex(graph, min(since, version))
            columns = [*metadata_columns(), ROWID]
            memory.set_rows(pinned.to_table(columns=columns))
            memory.apply(self._written_since(pinned, memory.version), None, version)
        self._memory_index = memory
        return memory

    def _saved_graph(self) -> tuple[ann.Graph, int] | None:
        try:
            stamp = self._graph_path.stat().st_mtime
        except OSError:
            return None
        if stamp == self._unloadable:
            return None
        loaded = ann.Graph.load(self._graph_path, self._dim)
        if loaded is None:
            self._unloadable = stamp
        return loaded

    def _catch_up(self, memory: MemoryIndex, version: int) -> None:
        """Read the rows written since ``memory.version``; read every live row id only when
        the row count says some were deleted."""
        pinned = self._pinned_at(version)
        changed = self._written_since(pinned, memory.version)
        rowids = changed.column(ROWID).to_numpy().astype(np.int64)
        expected = memory.count + int(np.count_nonzero(~memory.is_live(rowids)))
        live = None
        if int(pinned.count_rows()) != expected:
            column = pinned.to_table(columns=[ROWID]).column(ROWID)
            live = np.sort(column.to_numpy().astype(np.int64))
        memory.apply(changed, live, version)

    def _pinned_at(self, version: int) -> Any:
        """The table at exactly ``version``: the reads of one catch-up see one version even
        while other processes write."""
        return self._dataset.checkout_version(version)

    def _written_since(self, table: Any, version: int) -> pa.Table:
        return table.to_table(columns=full_scan_columns(), filter=f"{UPDATED_AT} > {int(version)}")

    def _exact_search(self, vector: Vectors, k: int, flt: Filter | None) -> ScoredRecords:
        nearest = {
            "column": VECTOR,
            "q": np.asarray(vector, dtype=np.float32),
            "k": k,
            "metric": "cosine",
        }
        table = self._table.to_table(nearest=nearest, filter=to_sql(flt), prefilter=True)
        scores = 1.0 - table.column("_distance").to_numpy(zero_copy_only=False)
        return list(zip(arrow_to_records(table), (float(s) for s in scores), strict=True))

    def count(self, flt: Filter | None = None) -> int:
        return int(self._table.count_rows(to_sql(flt)))

    def scan(
        self, flt: Filter | None = None, with_vectors: bool = False
    ) -> Iterator[tuple[list[Record], Vectors | None]]:
        columns = metadata_columns() + ([VECTOR] if with_vectors else [])
        batches = self._table.to_batches(columns=columns, filter=to_sql(flt), batch_size=SCAN_BATCH)
        for batch in batches:
            table = pa.Table.from_batches([batch])
            yield arrow_to_records(table), arrow_vectors(table) if with_vectors else None

    def page(self, flt: Filter | None, offset: int, limit: int) -> list[Record]:
        table = self._table.to_table(
            columns=metadata_columns(), filter=to_sql(flt), offset=offset, limit=limit
        )
        return arrow_to_records(table)

    def drop(self) -> None:
        with self._lock:
            shutil.rmtree(self._uri, ignore_errors=True)
            ann.discard(self._graph_path)
            self._memory_index = None

    def refresh(self) -> None:
        self._checked_at = -VERSION_CHECK_S

    def persist(self) -> None:
        """Compact, index ids once the table is large, and bring the graph up to date: built
        once the table reaches ``ANN_FROM`` rows (and again when a quarter of it is dead),
        otherwise the rows written since are inserted; then saved for other processes."""
        self.refresh()
        table = self._table
        table.optimize.compact_files()
        if self._indexed("id"):
            table.optimize.optimize_indices()
        table.cleanup_old_versions(older_than=CLEANUP_OLDER_THAN)
        count = self.count()
        if count >= ID_INDEX_FROM and not self._indexed("id"):
            table.create_scalar_index("id", index_type="BTREE")
        if count < ANN_FROM or not self._stable:
            return
        with self._lock:
            memory = self.memory_index()
            saved = ann.saved_stamp(self._graph_path)
            if memory is not None and self._other_graph(memory, saved):
                memory = self._load(self._table.version)
            if memory is None or memory.graph.dead > REBUILD_DEAD * memory.graph.size:
                memory = self._build(self._table.version)
            else:
                memory.fold()
            memory.graph.save(self._graph_path, memory.version)
            self._unloadable = None

    def _saved_is_larger(self, memory: MemoryIndex) -> bool:
        """Has another process saved a graph with :data:`RELOAD_AFTER` more points than
        this handle's? Rows it folded in would otherwise stay in this handle's flat buffer,
        scanned whole by every search until this process ends."""
        saved = ann.saved_stamp(self._graph_path)
        return (
            saved is not None
            and saved != memory.graph.stamp
            and saved[1] - memory.graph.size >= RELOAD_AFTER
        )

    @staticmethod
    def _other_graph(memory: MemoryIndex, saved: tuple[str, int] | None) -> bool:
        """Whether another writer saved (or removed) a graph since this one was loaded: rows
        are then added to the saved graph, never to a stale copy of it."""
        return saved != memory.graph.stamp and (saved is not None or memory.graph.size > 0)

    def _build(self, version: int) -> MemoryIndex:
        """A new graph of every live row, read in batches (the table is never in memory
        twice: each batch's vectors go into the graph, its columns are kept)."""
        pinned = self._pinned_at(version)
        for stale in self._graph_path.parent.glob(f"{self._graph_path.name}.f32.*.tmp"):
            stale.unlink(missing_ok=True)  # vectors of builds that never finished
        building = ann.ExactVectors(ann.building_path(self._graph_path), self._dim)
        graph = ann.Graph(self._dim, building)
        parts: list[pa.Table] = []
        pending: list[pa.Table] = []

        def insert() -> None:
            batch = pa.concat_tables(pending)
            graph.add(arrow_vectors(batch), batch.column(ROWID).to_numpy())
            # a copy of the columns: keeping views would keep the vectors' buffers alive
            parts.append(batch.drop_columns([VECTOR]).combine_chunks())
            pending.clear()

        rows = 0
        batches = pinned.to_batches(
            columns=full_scan_columns(), batch_size=SCAN_BATCH, io_buffer_size=SCAN_IO_BUFFER
        )
        for batch in batches:
            pending.append(pa.Table.from_batches([batch]))
            rows += batch.num_rows
            if rows >= GRAPH_BATCH:
                insert()
                rows = 0
        if pending:
            insert()
        memory = MemoryIndex(graph, version)
        columns = [*metadata_columns(), ROWID]
        if not parts:  # an empty table: columns of no rows
            empty = record_schema(self._dim).empty_table().drop_columns([VECTOR])
            parts.append(empty.append_column(ROWID, pa.array([], pa.uint64())))
        memory.set_rows(pa.concat_tables(parts).select(columns))
        self._memory_index = memory
        return memory

    def _indexed(self, column: str) -> bool:
        return any(list(index.field_names) == [column] for index in self._table.describe_indices())


def _open_or_create(uri: str, dim: int) -> Any:
    """The dataset at ``uri``, created empty (with stable row ids) when there is none; a
    second process creating it at the same moment opens the one that won."""
    import lance

    try:
        return lance.dataset(uri)
    except (FileNotFoundError, ValueError):
        pass
    schema = record_schema(dim)
    try:
        return lance.write_dataset(
            schema.empty_table(), uri, schema=schema, mode="create", enable_stable_row_ids=True
        )
    except (OSError, ValueError):
        return lance.dataset(uri)
