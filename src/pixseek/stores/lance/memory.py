"""A large table's search state in memory: the HNSW graph, a flat buffer of recent rows,
and the records' columns, so that a search touches no disk.

- Rows are keyed by their stable Lance row id, which survives updates and compaction, so
  ``_row_last_updated_at_version`` tells exactly which rows changed since the version
  this index holds. Catching up after any writer (this process or another) reads only
  those rows, with their vectors, into a flat buffer searched exactly beside the graph;
  the graph position of a replaced or deleted row is marked dead. ``fold`` moves the
  buffer into the graph (done by ``persist``, so that readers never pay graph inserts).
- The records' columns (everything but the vector) stay in memory as Arrow columns: a
  hit is returned by position, and a filter becomes a row mask computed there, cached
  per filter until the next change, then applied inside the graph walk; filters that
  keep few rows are searched exactly over those rows' vectors.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from pixseek.core.filters import Filter
from pixseek.core.records import Record
from pixseek.core.vectors import Vectors
from pixseek.stores.base import ScoredRecords
from pixseek.stores.knn import FEW_QUERIES, exact_neighbours
from pixseek.stores.lance.ann import Graph, Ints, Mask, bitmap
from pixseek.stores.lance.mask import filter_mask
from pixseek.stores.lance.schema import VECTOR, arrow_to_records, arrow_vectors, metadata_columns
from pixseek.stores.lance.sql import to_sql

ROWID = "_rowid"
UPDATED_AT = "_row_last_updated_at_version"
EXACT_SHARE = 0.05  # filters keeping fewer of the graph's rows are searched exactly over them
EXACT_ROWS = 4096  # ...and so are filters keeping at most this many rows
MASKS = 8  # filters whose masks are kept until the next change
MAX_CHUNKS = 4  # record column chunks before they are combined into one
Scores = NDArray[np.float32]


@dataclass
class Allowed:
    """What one filter keeps: by row id, by graph position, and (when selective) the
    kept graph rows' vectors gathered once for exact search."""

    by_rowid: Mask
    in_graph: Mask
    graph_count: int
    exact: Ints | None
    exact_vectors: Vectors | None


class MemoryIndex:
    def __init__(self, graph: Graph, version: int) -> None:
        self.graph = graph
        self.version = version
        self.dim = graph.dim
        self.count = 0  # live rows
        self._chunks: list[pa.Table] = []
        self._rows: pa.Table | None = None
        self._rowid_of_row: Ints = np.empty(0, np.int64)
        self._row_of: Ints = np.empty(0, np.int64)  # row id -> row, -1 when not live
        self._pos_of: Ints = np.empty(0, np.int64)  # row id -> live graph position or -1
        self._slot_of: Ints = np.empty(0, np.int64)  # row id -> live buffer slot or -1
        self._buffer_rowids: Ints = np.empty(0, np.int64)
        self._buffer = FlatBuffer(self.dim)
        self._buffer_alive: Mask = np.empty(0, np.bool_)
        self._buffered = 0
        self._allowed: OrderedDict[str, Allowed] = OrderedDict()
        live = np.flatnonzero(graph.alive)
        self._grow(int(graph.rowids.max()) + 1 if graph.size else 0)
        self._pos_of[graph.rowids[live]] = live

    @property
    def buffered(self) -> int:
        return int(np.count_nonzero(self._buffer_alive[: self._buffered]))

    def _grow(self, size: int) -> None:
        if size <= len(self._row_of):
            return
        size = max(size, int(len(self._row_of) * 1.25) + 1024)
        for name in ("_row_of", "_pos_of", "_slot_of"):
            old = getattr(self, name)
            grown = np.full(size, -1, np.int64)
            grown[: len(old)] = old
            setattr(self, name, grown)

    def _append_rows(self, table: pa.Table) -> Ints:
        rowids: Ints = table.column(ROWID).to_numpy().astype(np.int64)
        self._grow(int(rowids.max()) + 1 if len(rowids) else 0)
        start = len(self._rowid_of_row)
        # one chunk per append (see _take)
        self._chunks.append(table.select(metadata_columns()).combine_chunks())
        self._rows = None
        self._rowid_of_row = np.concatenate([self._rowid_of_row, rowids])
        newly = int(np.count_nonzero(self._row_of[rowids] < 0))
        self._row_of[rowids] = np.arange(start, start + len(rowids))
        self.count += newly
        return rowids

    def set_rows(self, table: pa.Table) -> None:
        """Every live row's columns (and row id), read at this index's version: graph points
        of rows that are gone are marked dead."""
        self._append_rows(table)
        live = self._row_of[self.graph.rowids] >= 0 if self.graph.size else np.empty(0, bool)
        gone = np.flatnonzero(self.graph.alive & ~live)
        self.graph.kill(gone)
        self._pos_of[self.graph.rowids[gone]] = -1
        self._allowed.clear()

    def apply(self, changed: pa.Table, live: Ints | None, version: int) -> None:
        """Rows written since this index's version (columns, vector, row id), and, when rows
        may have been deleted, every live row id."""
        if changed.num_rows:
            rowids = self._append_rows(changed)
            self._retire(rowids)
            self._add_to_buffer(arrow_vectors(changed), rowids)
        if live is not None:
            current = np.flatnonzero(self._row_of >= 0)
            gone = np.setdiff1d(current, live, assume_unique=True)
            self._row_of[gone] = -1
            self._retire(gone)
            self.count -= len(gone)
        self.version = version
        self._allowed.clear()

    def is_live(self, rowids: Ints) -> Mask:
        inside = rowids < len(self._row_of)
        live = np.zeros(len(rowids), np.bool_)
        live[inside] = self._row_of[rowids[inside]] >= 0
        return live

    def _retire(self, rowids: Ints) -> None:
        """The graph points and buffer slots of these rows no longer hold their vectors."""
        positions = self._pos_of[rowids]
        self.graph.kill(positions[positions >= 0])
        self._pos_of[rowids] = -1
        slots = self._slot_of[rowids]
        self._buffer_alive[slots[slots >= 0]] = False
        self._slot_of[rowids] = -1

    def _add_to_buffer(self, vectors: Vectors, rowids: Ints) -> None:
        needed = self._buffered + len(rowids)
        if needed > len(self._buffer_rowids):
            size = max(needed, 2 * len(self._buffer_rowids), 1024)
            self._buffer_rowids = np.resize(self._buffer_rowids, size)
            self._buffer_alive = np.resize(self._buffer_alive, size)
        slots = np.arange(self._buffered, needed)
        self._buffer.add(vectors)
        self._buffer_rowids[slots] = rowids
        self._buffer_alive[slots] = True
        self._slot_of[rowids] = slots
        self._buffered = needed

    def fold(self) -> None:
        """Insert the buffered rows into the graph (the expensive part of a write)."""
        slots = np.flatnonzero(self._buffer_alive[: self._buffered])
        if len(slots):
            rowids = self._buffer_rowids[slots]
            self._pos_of[rowids] = self.graph.add(self._buffer.vectors()[slots], rowids)
            self._slot_of[rowids] = -1
        self._buffer = FlatBuffer(self.dim)
        self._buffer_rowids = np.empty(0, np.int64)
        self._buffer_alive = np.empty(0, np.bool_)
        self._buffered = 0
        self._allowed.clear()

    def rows(self) -> pa.Table:
        if self._rows is None:
            if len(self._chunks) > MAX_CHUNKS:
                self._chunks = [pa.concat_tables(self._chunks).combine_chunks()]
            self._rows = pa.concat_tables(self._chunks) if self._chunks else None
        assert self._rows is not None
        return self._rows

    def records(self, rowids: Ints) -> list[Record]:
        if not len(rowids):
            return []
        return arrow_to_records(self._take(self._row_of[rowids]))

    def scored(self, found: list[tuple[Ints, Scores]]) -> list[ScoredRecords]:
        """Each query's hits as (record, score): the records of every query are taken in
        one pass, since a take per query cost more than a batch's graph walk."""
        every = self.records(np.concatenate([ids for ids, _ in found])) if found else []
        out: list[ScoredRecords] = []
        start = 0
        for ids, scores in found:
            hits = every[start : start + len(ids)]
            out.append(list(zip(hits, scores.tolist(), strict=True)))
            start += len(ids)
        return out

    def _take(self, rows: Ints) -> pa.Table:
        """Rows by position, taken from each chunk on its own: Arrow's take on a table of
        several chunks first concatenates them (a millisecond at 100,000 rows)."""
        self.rows()  # combines the chunks when there are many
        starts = np.cumsum([0] + [chunk.num_rows for chunk in self._chunks])
        chunk_of = np.searchsorted(starts, rows, side="right") - 1
        parts, order = [], []
        for chunk in np.unique(chunk_of):
            picked = np.flatnonzero(chunk_of == chunk)
            parts.append(self._chunks[chunk].take(rows[picked] - starts[chunk]))
            order.append(picked)
        if len(parts) == 1:
            return parts[0]
        return pa.concat_tables(parts).take(np.argsort(np.concatenate(order)))

    def allowed(self, flt: Filter) -> Allowed:
        key = to_sql(flt) or ""
        found = self._allowed.get(key)
        if found is not None:
            self._allowed.move_to_end(key)
            return found
        rows = self.rows()
        match = filter_mask(rows, flt)
        match &= self._row_of[self._rowid_of_row] == np.arange(rows.num_rows)  # live copies
        by_rowid = np.zeros(len(self._row_of), np.bool_)
        by_rowid[self._rowid_of_row[match]] = True
        graph = self.graph
        in_graph = graph.alive & by_rowid[graph.rowids] if graph.size else np.empty(0, bool)
        graph_count = int(np.count_nonzero(in_graph))
        exact = exact_vectors = None
        if graph_count <= max(EXACT_ROWS, EXACT_SHARE * (graph.size - graph.dead)):
            exact = np.flatnonzero(in_graph)
            exact_vectors = graph.vectors()[exact]
        found = Allowed(by_rowid, in_graph, graph_count, exact, exact_vectors)
        self._allowed[key] = found
        if len(self._allowed) > MASKS:
            self._allowed.popitem(last=False)
        return found

    def search(self, queries: Vectors, k: int, flt: Filter | None) -> list[tuple[Ints, Scores]]:
        """Per query, the row ids and cosine scores of the ``k`` best rows, best first."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        allowed = self.allowed(flt) if flt else None
        graph_ids, graph_scores = self._search_graph(queries, k, allowed)
        buffer_ids, buffer_scores = self._search_buffer(queries, k, allowed)
        ids = np.concatenate([graph_ids, buffer_ids], axis=1)
        scores = np.concatenate([graph_scores, buffer_scores], axis=1)
        scores = np.where(ids >= 0, scores, -np.inf).astype(np.float32)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        ids = np.take_along_axis(ids, order, axis=1)
        scores = np.take_along_axis(scores, order, axis=1)
        out = []
        for row_ids, row_scores in zip(ids, scores, strict=True):
            valid = row_ids >= 0
            out.append((row_ids[valid], row_scores[valid]))
        return out

    def _search_graph(
        self, queries: Vectors, k: int, allowed: Allowed | None
    ) -> tuple[Ints, Scores]:
        graph = self.graph
        available = graph.size - graph.dead if allowed is None else allowed.graph_count
        want = min(k, available)
        if want == 0:
            return _empty(len(queries))
        if allowed is not None and allowed.exact is not None:
            assert allowed.exact_vectors is not None
            found, scores = exact_neighbours(queries, allowed.exact_vectors, want)
            return graph.rowids[allowed.exact[found]], scores
        mask = None if allowed is None else allowed.in_graph
        scores, positions = graph.search(queries, want, mask)
        short = np.flatnonzero((positions < 0).any(axis=1))
        if len(short):  # the walk ended early (heavily filtered or deleted): exact for those
            keep = graph.alive if mask is None else mask
            kept = np.flatnonzero(keep)
            found, exact_scores = exact_neighbours(queries[short], graph.vectors()[kept], want)
            positions[short], scores[short] = kept[found], exact_scores
        return np.where(positions >= 0, graph.rowids[positions], -1), scores

    def _search_buffer(
        self, queries: Vectors, k: int, allowed: Allowed | None
    ) -> tuple[Ints, Scores]:
        keep = self._buffer_alive[: self._buffered]
        if allowed is not None and self._buffered:
            keep = keep & allowed.by_rowid[self._buffer_rowids[: self._buffered]]
        available = int(np.count_nonzero(keep))
        if not available:
            return _empty(len(queries))
        every = available == self._buffered
        scores, slots = self._buffer.search(queries, min(k, available), None if every else keep)
        return np.where(slots >= 0, self._buffer_rowids[slots], -1), scores


class FlatBuffer:
    """Vectors searched exactly (faiss's flat index): the rows written since the graph was
    built, or every row of a table too small for a graph. Rows left out (deleted, replaced,
    filtered) are skipped by a bitmap inside the scan, so nothing is copied per search."""

    def __init__(self, dim: int) -> None:
        import faiss

        self.dim = dim
        self._index: Any = faiss.IndexFlatIP(dim)

    def add(self, vectors: Vectors) -> None:
        self._index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def vectors(self) -> Vectors:
        import faiss

        count = self._index.ntotal
        if not count:
            return np.empty((0, self.dim), np.float32)
        flat = faiss.rev_swig_ptr(self._index.get_xb(), count * self.dim)
        return np.asarray(flat).reshape(count, self.dim)

    def search(self, queries: Vectors, k: int, keep: Mask | None) -> tuple[Scores, Ints]:
        import faiss

        params: Any = None
        if keep is not None:
            bits = bitmap(keep)
            params = faiss.SearchParameters()  # type: ignore[attr-defined]
            params.sel = faiss.IDSelectorBitmap(len(keep), faiss.swig_ptr(bits))
        faiss.omp_set_num_threads(1 if len(queries) <= FEW_QUERIES else os.cpu_count() or 1)
        scores, slots = self._index.search(queries, k, params=params)
        slots = slots.astype(np.int64)
        # equal scores in row order (faiss leaves ties in heap order): a whole-image
        # object ties with its image, which was written first
        order = np.lexsort((np.where(slots >= 0, slots, np.iinfo(np.int64).max), -scores))
        return np.take_along_axis(scores, order, 1), np.take_along_axis(slots, order, 1)


def _empty(queries: int) -> tuple[Ints, Scores]:
    return np.empty((queries, 0), np.int64), np.empty((queries, 0), np.float32)


def full_scan_columns() -> list[str]:
    return [*metadata_columns(), VECTOR, ROWID]
