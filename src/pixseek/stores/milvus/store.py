"""A collection's index kept in Milvus (standalone or a distributed cluster), by URI.

``milvus://HOST:PORT`` (``milvus+https://`` for TLS). One Milvus collection per
pixseek index; the filterable fields are scalar columns, the whole record travels
as JSON beside them, and vectors sit in an HNSW index with inner product (the rows
are unit vectors, so it is cosine similarity). Reads use session consistency: a client
reads its own writes at once, other clients within about a second (strong consistency
costs hundreds of milliseconds a query). Only ``MilvusClient`` calls that Milvus 2.3 to
2.5 share are used.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from pixseek.core.errors import StorageError
from pixseek.core.filters import FILTER_FIELDS, LIST_FIELDS, Filter
from pixseek.core.optional import require_module
from pixseek.core.records import Record
from pixseek.core.vectors import Vectors
from pixseek.stores.base import ScoredRecords, check_vectors, chunks
from pixseek.stores.milvus.expr import literal_list, to_expr

VECTOR, RECORD = "vector", "record"
CHUNK = 1000
SCAN_BATCH = 4096
MAX_TEXT = 4096
HNSW = {"M": 16, "efConstruction": 200}
EF, MAX_EF = 64, 32_768  # the graph walk's breadth: unfiltered, and Milvus's limit
SEARCH_BATCH = 256  # query vectors a search request
INDEX_WAIT_S, INDEX_POLL_S = 600.0, 0.5  # persist waits for the graph to cover new rows
SERVE_WAIT_S = 60.0  # then for the query node to search them through it
GRAPH_FROM_ROWS = 1024  # Milvus builds no graph for a smaller segment (its default)
SHARE_TTL_S, SHARES_KEPT = 60.0, 64  # how long a filter's share of the rows is reused
CONSISTENCY = "Session"
DELETE_VISIBLE_S = 2.0  # after a delete, reads are strong for this long


def client_uri(location: str) -> str:
    scheme, _, rest = location.partition("://")
    return ("https://" if scheme.endswith("+https") else "http://") + rest.rstrip("/")


def _row(record: Record, vector: Vectors) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in FILTER_FIELDS:
        value = getattr(record, name)
        row[name] = [str(v) for v in value] if name in LIST_FIELDS else str(value or "")
    values = asdict(record)
    values["metadata"] = dict(record.metadata)
    row[RECORD] = json.loads(json.dumps(values, default=str))
    row[VECTOR] = [float(x) for x in vector]
    return row


def _record(row: dict[str, Any]) -> Record:
    values = dict(row[RECORD])
    if values.get("box") is not None:
        values["box"] = tuple(values["box"])
    return Record(**values)


class MilvusStore:
    def __init__(self, location: str, table: str, dim: int) -> None:
        pymilvus = require_module("pymilvus", "milvus", "a Milvus store (milvus://)")

        self._dim = dim
        self._name = table
        self._strong_reads = 0
        self._shares: dict[str, tuple[float, float]] = {}  # filter -> (counted at, share)
        # a new handle starts from every write made before it opened (other clients' too)
        self._strong_until = time.monotonic() + DELETE_VISIBLE_S
        try:
            self._client = pymilvus.MilvusClient(uri=client_uri(location))
        except Exception as exc:
            raise StorageError(f"cannot reach Milvus at {location}: {exc}") from exc
        if not self._client.has_collection(table):
            self._create()
        stored = self._stored_dim()
        if stored != dim:
            raise StorageError(f"Milvus collection {table!r} holds {stored}-d vectors, not {dim}")

    def _create(self) -> None:
        from pymilvus import DataType

        schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=256)
        for name in FILTER_FIELDS:
            if name == "id":
                continue
            if name in LIST_FIELDS:
                schema.add_field(
                    name,
                    DataType.ARRAY,
                    element_type=DataType.VARCHAR,
                    max_capacity=256,
                    max_length=MAX_TEXT,
                )
            else:
                schema.add_field(name, DataType.VARCHAR, max_length=MAX_TEXT)
        schema.add_field(RECORD, DataType.JSON)
        schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=self._dim)
        index = self._client.prepare_index_params()
        index.add_index(VECTOR, index_type="HNSW", metric_type="IP", params=HNSW)
        self._client.create_collection(
            self._name, schema=schema, index_params=index, consistency_level=CONSISTENCY
        )

    def _stored_dim(self) -> int:
        fields = self._client.describe_collection(self._name)["fields"]
        vector = next(f for f in fields if f["name"] == VECTOR)
        return int(vector["params"]["dim"])

    @property
    def dim(self) -> int:
        return self._dim

    def upsert(self, records: Sequence[Record], vectors: Vectors) -> None:
        if not records:
            return
        check_vectors(records, vectors, self._dim)
        rows = [_row(r, v) for r, v in zip(records, vectors, strict=True)]
        for part in chunks(rows, CHUNK):
            self._client.upsert(self._name, part)

    def delete(self, ids: Sequence[str]) -> None:
        for chunk in chunks(ids, CHUNK):
            self._client.delete(self._name, filter=f"id in {literal_list(chunk)}")
        self._deleted()

    def delete_where(self, flt: Filter) -> None:
        expr = to_expr(flt)
        if not expr:
            raise StorageError("refusing to delete with an empty filter")
        self._client.delete(self._name, filter=expr)
        self._deleted()

    def _query(self, expr: str, fields: list[str], **kwargs: Any) -> list[dict[str, Any]]:
        return list(
            self._client.query(
                self._name,
                filter=expr,
                output_fields=fields,
                consistency_level=self._consistency(),
                **kwargs,
            )
        )

    def get(self, ids: Sequence[str]) -> dict[str, Record]:
        found: dict[str, Record] = {}
        for chunk in chunks(ids, CHUNK):
            for row in self._query(f"id in {literal_list(chunk)}", [RECORD]):
                record = _record(row)
                found[record.id] = record
        return found

    def get_vectors(self, ids: Sequence[str]) -> dict[str, Vectors]:
        found: dict[str, Vectors] = {}
        for chunk in chunks(ids, CHUNK):
            for row in self._query(f"id in {literal_list(chunk)}", ["id", VECTOR]):
                found[row["id"]] = np.asarray(row[VECTOR], dtype=np.float32)
        return found

    def search(self, vector: Vectors, k: int, flt: Filter | None = None) -> ScoredRecords:
        return self.search_many(np.asarray(vector)[None, :], k, flt)[0]

    def search_many(
        self, vectors: Vectors, k: int, flt: Filter | None = None
    ) -> list[ScoredRecords]:
        """Many queries a request (:data:`SEARCH_BATCH` at a time, to keep each message
        small): duplicates, match's views and the outside-image levels ask thousands, one
        round trip each before."""
        params = {"metric_type": "IP", "params": {"ef": self._breadth(k, flt)}}
        found: list[ScoredRecords] = []
        for start in range(0, len(vectors), SEARCH_BATCH):
            results = self._client.search(
                self._name,
                data=[[float(x) for x in row] for row in vectors[start : start + SEARCH_BATCH]],
                limit=k,
                filter=to_expr(flt),
                output_fields=[RECORD],
                search_params=params,
                consistency_level=self._consistency(),
            )
            found += [
                [(_record(h["entity"]), float(h["distance"])) for h in hits] for hits in results
            ]
        return found

    def _breadth(self, k: int, flt: Filter | None) -> int:
        """The graph walk's breadth: an unfiltered search's, divided by the share of rows
        a filter keeps, so that the walk meets as many of them as an unfiltered one meets
        rows, up to Milvus's limit (Milvus itself scans a segment exactly when a filter
        keeps under about 7% of its rows); the share is counted once a minute. At 100,000
        rows a 10% filter found 0.929 of its true top 10 with a walk ``k / share`` wide,
        0.98 with this one (``bench/search.py``)."""
        expr = to_expr(flt)
        if not expr:
            return max(EF, k)
        now = time.monotonic()
        cached = self._shares.get(expr)
        if cached is None or now - cached[0] > SHARE_TTL_S:
            total = max(self.count(), 1)
            cached = (now, self.count(flt) / total)
            self._shares[expr] = cached
            if len(self._shares) > SHARES_KEPT:
                self._shares.pop(next(iter(self._shares)))
        share = max(cached[1], 1e-6)
        return int(min(MAX_EF, math.ceil(max(EF, k) / share)))

    def count(self, flt: Filter | None = None) -> int:
        rows = self._query(to_expr(flt), ["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def scan(
        self, flt: Filter | None = None, with_vectors: bool = False
    ) -> Iterator[tuple[list[Record], Vectors | None]]:
        fields = [RECORD, VECTOR] if with_vectors else [RECORD]
        iterator = self._client.query_iterator(
            self._name,
            batch_size=SCAN_BATCH,
            filter=to_expr(flt),
            output_fields=fields,
            consistency_level=self._consistency(),
        )
        try:
            while batch := iterator.next():
                records = [_record(row) for row in batch]
                vectors = (
                    np.asarray([row[VECTOR] for row in batch], dtype=np.float32)
                    if with_vectors
                    else None
                )
                yield records, vectors
        finally:
            iterator.close()

    def page(self, flt: Filter | None, offset: int, limit: int) -> list[Record]:
        rows = self._query(to_expr(flt), [RECORD], offset=offset, limit=limit)
        return [_record(row) for row in rows]

    def _consistency(self) -> str:
        if self._strong_reads > 0:
            self._strong_reads -= 1
            return "Strong"
        if time.monotonic() < self._strong_until:
            return "Strong"  # session reads do not wait for this client's deletes
        return CONSISTENCY

    def _deleted(self) -> None:
        self._strong_until = time.monotonic() + DELETE_VISIBLE_S

    def refresh(self) -> None:
        """The next reads wait for every client's writes (strong consistency); later ones
        see this client's own writes at once."""
        self._strong_reads = 4

    def drop(self) -> None:
        self._client.drop_collection(self._name)

    def persist(self) -> None:
        """Flush, then wait (up to INDEX_WAIT_S) until Milvus's graph covers every flushed
        row, and (up to SERVE_WAIT_S more) until the query node searches them through it.
        Until then, Milvus searches those rows through a temporary coarse index: a 1%
        filter found 0.48 of its true top 10 right after a flush of 100,000 rows and 0.96
        once the graph was built; at 20,000 rows, 0.65 for the 15 s between the graph
        being reported built and the query node loading it, 1.0 after."""
        self._client.flush(self._name)
        deadline = time.monotonic() + INDEX_WAIT_S
        while time.monotonic() < deadline and not self._indexed():
            time.sleep(INDEX_POLL_S)
        deadline = time.monotonic() + SERVE_WAIT_S
        while time.monotonic() < deadline and not self._served():
            time.sleep(INDEX_POLL_S)

    def _progress(self) -> dict[str, Any]:
        return dict(self._client.describe_index(self._name, VECTOR) or {})

    def _indexed(self) -> bool:
        """No flushed row waits for the graph, by Milvus's own count of pending rows."""
        return int(self._progress().get("pending_index_rows", 0)) == 0

    def _served(self) -> bool:
        """Does the query node search the flushed rows through their graphs, but for fewer
        than a graph's worth (a small write, searched well enough without one: no wait)?
        It loads a sealed segment first without its graph, then again with it. Asked as
        MilvusClient itself asks the server's type, through its connection; a server that
        cannot say is not waited for."""
        pymilvus = require_module("pymilvus", "milvus", "a Milvus store (milvus://)")
        try:
            segments = pymilvus.utility.get_query_segment_info(
                self._name, using=self._client._using
            )
        except Exception:
            return True
        loaded = sum(int(s.num_rows) for s in segments)
        # a segment too small for a graph is scanned exactly, and never loaded with one
        waiting = sum(
            int(s.num_rows)
            for s in segments
            if not s.index_name and int(s.num_rows) >= GRAPH_FROM_ROWS
        )
        not_loaded = max(0, int(self._progress().get("indexed_rows", 0)) - loaded)
        return waiting + not_loaded < GRAPH_FROM_ROWS
