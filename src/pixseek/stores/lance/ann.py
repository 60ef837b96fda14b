"""An HNSW graph (faiss) over a table's vectors, kept in memory and saved beside the table.

Graph positions are dense (0, 1, 2, ... in insertion order) and each maps to the row's
stable Lance row id, so a hit is a row without any lookup by id.

Memory per point is what a million-row collection can afford: the graph holds each
vector as 8-bit codes (a scalar quantizer trained on the first rows, 512 bytes at 512-d)
plus its links, and walks them to collect a few dozen candidates; the candidates are then
re-ranked exactly against the float32 vectors, which live in a file beside the graph and
are memory-mapped (:class:`ExactVectors`), so only the pages a search touches are read.
Scores returned are therefore exact cosines, and recall is that of the graph walk.

faiss cannot remove a point: rows deleted or replaced since the graph was built are
marked dead and excluded by a bitmap inside the graph search (faiss applies it in C++
while it walks the graph).
"""

from __future__ import annotations

import json
import mmap
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pixseek.core.errors import DAMAGED_NPZ
from pixseek.core.vectors import Vectors
from pixseek.stores.knn import rerank

M, EF_CONSTRUCTION, EF_SEARCH = 16, 200, 128
# EF_SEARCH is also the breadth for queries in batches: narrower walks were faster but lost
# too much where it matters. bench/classify.py, a million vectors in 100,000 classes, kNN
# vote of 10: breadth 64 took 0.238 ms a query and was right for 0.704 of queries against
# 1.000 for exact kNN; 128 took 0.442 ms at 0.881; 256, 0.667 ms at 0.971.
RERANK, RERANK_MIN = 4, 40  # candidates re-ranked exactly: RERANK per hit, at least RERANK_MIN
RANGE_SLACK = 0.1  # the quantizer's range is widened by this share for rows added later
FORMAT = 3  # 8-bit codes in the graph, exact vectors beside it (2: float32 in the graph)
Ints = NDArray[np.int64]
Mask = NDArray[np.bool_]
Scores = NDArray[np.float32]


def bitmap(allowed: Mask) -> NDArray[np.uint8]:
    """faiss's ``IDSelectorBitmap`` layout: bit ``i % 8`` of byte ``i // 8``."""
    return np.packbits(allowed, bitorder="little")


class ExactVectors:
    """The graph points' float32 vectors, one row per position, in an append-only file.

    Rows are only ever appended after the last saved row (writers hold the collection's
    lock), so another process that mapped a shorter prefix keeps reading valid rows."""

    def __init__(self, path: Path, dim: int, rows: int = 0) -> None:
        self.path = path
        self.dim = dim
        self.rows = rows
        self._view: Vectors | None = None

    @property
    def row_bytes(self) -> int:
        return self.dim * 4

    def append(self, vectors: Vectors) -> None:
        data = np.ascontiguousarray(vectors, dtype=np.float32)
        mode = "r+b" if self.path.exists() else "w+b"
        with open(self.path, mode) as handle:
            handle.seek(self.rows * self.row_bytes)
            handle.write(data.tobytes())
            handle.truncate()
        self.rows += len(data)
        self._view = None

    def view(self) -> Vectors:
        """All rows as one read-only (rows, dim) matrix, mapped rather than read.

        The kernel is asked to read the whole file ahead, in the background, into its page
        cache: otherwise the first searches after a start each wait on the disk for the
        pages of their candidates (a p99 of 47 ms at a million rows). Cached pages are the
        kernel's to drop under memory pressure; the process only maps them."""
        if self._view is None:
            if not self.rows:
                return np.empty((0, self.dim), np.float32)
            with open(self.path, "rb") as handle:
                mapped = mmap.mmap(
                    handle.fileno(), self.rows * self.row_bytes, access=mmap.ACCESS_READ
                )
            if hasattr(mmap, "MADV_WILLNEED"):
                mapped.madvise(mmap.MADV_WILLNEED)
            self._view = np.frombuffer(mapped, np.float32).reshape(self.rows, self.dim)
        return self._view

    def move(self, path: Path) -> None:
        if path != self.path:
            self.path.touch()  # a graph of no points has written no file yet
            os.replace(self.path, path)
            self.path = path

    def fits(self) -> bool:
        try:
            return self.path.stat().st_size >= self.rows * self.row_bytes
        except OSError:
            return False


def new_index(dim: int) -> Any:
    import faiss

    kind: Any = faiss.ScalarQuantizer.QT_8bit  # faiss's stubs type the enum as its class
    index: Any = faiss.IndexHNSWSQ(dim, kind, M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    storage: Any = faiss.downcast_index(index.storage)
    storage.sq.rangestat = faiss.ScalarQuantizer.RS_minmax
    storage.sq.rangestat_arg = RANGE_SLACK
    return index


class Graph:
    def __init__(
        self, dim: int, exact: ExactVectors, index: Any = None, generation: str = ""
    ) -> None:
        self.dim = dim
        self.generation = generation or uuid.uuid4().hex  # one per build, kept by its saves
        self._index: Any = new_index(dim) if index is None else index
        self._index.hnsw.efSearch = EF_SEARCH
        self.exact = exact
        self.rowids: Ints = np.empty(0, np.int64)  # position -> stable row id
        self.alive: Mask = np.empty(0, np.bool_)  # position -> still the row's vector
        self._bits: NDArray[np.uint8] | None = None

    @property
    def size(self) -> int:
        return len(self.rowids)

    @property
    def dead(self) -> int:
        return int(self.size - np.count_nonzero(self.alive))

    @property
    def stamp(self) -> tuple[str, int]:
        return self.generation, self.size

    def add(self, vectors: Vectors, rowids: Ints) -> Ints:
        """Append points; returns their positions. The first rows added train the codes."""
        import faiss

        faiss.omp_set_num_threads(os.cpu_count() or 1)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if not self._index.is_trained:
            self._index.train(vectors)
        start = self.size
        self.exact.append(vectors)
        self._index.add(vectors)
        self.rowids = np.concatenate([self.rowids, np.asarray(rowids, np.int64)])
        self.alive = np.concatenate([self.alive, np.ones(len(rowids), np.bool_)])
        self._bits = None
        return np.arange(start, self.size, dtype=np.int64)

    def kill(self, positions: Ints) -> None:
        if len(positions):
            self.alive[positions] = False
            self._bits = None

    def vectors(self) -> Vectors:
        """All points' exact vectors as one read-only (size, dim) matrix (memory-mapped)."""
        return self.exact.view()

    def search(
        self, queries: Vectors, k: int, allowed: Mask | None = None, ef: int | None = None
    ) -> tuple[Scores, Ints]:
        """Top ``k`` (exact scores, positions) per query among ``allowed`` positions
        (default: the live ones); position -1 where the graph walk found fewer. The walk's
        breadth is ``ef`` (default EF_SEARCH), widened to the candidates wanted."""
        import faiss

        if allowed is None and self.dead == 0:
            selector_bits = None
        elif allowed is None:
            if self._bits is None:
                self._bits = bitmap(self.alive)
            selector_bits = self._bits
        else:
            selector_bits = bitmap(allowed)
        candidates = min(max(k * RERANK, RERANK_MIN), self.size)
        params: Any = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
        params.efSearch = max(EF_SEARCH if ef is None else ef, candidates)
        if selector_bits is not None:
            selector = faiss.IDSelectorBitmap(self.size, faiss.swig_ptr(selector_bits))
            params.sel = selector
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        faiss.omp_set_num_threads(1 if len(queries) == 1 else os.cpu_count() or 1)
        _, positions = self._index.search(queries, candidates, params=params)
        return self.rerank(queries, positions.astype(np.int64), k)

    def rerank(self, queries: Vectors, positions: Ints, k: int) -> tuple[Scores, Ints]:
        """The ``k`` best candidates by exact cosine (the codes only chose the candidates)."""
        chosen, best = rerank(self.vectors(), queries, positions, k)
        return best, chosen

    def save(self, path: Path, version: int) -> None:
        """The graph, its vectors, its position map and the table version it matches; the
        metadata file is written last, so a reader never pairs a new graph with an old map."""
        import faiss

        meta_path, arrays_path = sidecar_paths(path)
        meta_path.unlink(missing_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        faiss.write_index(self._index, str(temporary))
        os.replace(temporary, path)
        self.exact.move(vectors_path(path))
        temporary = arrays_path.with_name(arrays_path.name + ".tmp.npz")
        np.savez(temporary, rowids=self.rowids, alive=self.alive)
        os.replace(temporary, arrays_path)
        meta = {
            "format": FORMAT,
            "version": version,
            "dim": self.dim,
            "size": self.size,
            "generation": self.generation,
        }
        meta_path.write_text(json.dumps(meta))

    @classmethod
    def load(cls, path: Path, dim: int) -> tuple[Graph, int] | None:
        """The saved graph and the table version it matches, or None (absent, older format,
        another dimension, unreadable)."""
        import faiss

        meta_path, arrays_path = sidecar_paths(path)
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("format") != FORMAT or meta.get("dim") != dim:
                return None
            index = faiss.read_index(str(path))
            with np.load(arrays_path) as arrays:
                rowids, alive = arrays["rowids"], arrays["alive"]
        except (*DAMAGED_NPZ, RuntimeError):  # RuntimeError: faiss's reader
            return None
        exact = ExactVectors(vectors_path(path), dim, len(rowids))
        if index.ntotal != len(rowids) or not exact.fits():
            return None
        graph = cls(dim, exact, index, str(meta.get("generation", "")))
        graph.rowids, graph.alive = rowids.astype(np.int64), alive.astype(np.bool_)
        return graph, int(meta["version"])


def saved_stamp(path: Path) -> tuple[str, int] | None:
    """Which build the saved graph comes from and how many points it has (None when there
    is none): a writer holding a graph other than the saved one reloads before adding to
    it, so that rows are only ever appended after the saved ones."""
    try:
        meta = json.loads(sidecar_paths(path)[0].read_text())
        return str(meta["generation"]), int(meta["size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def vectors_path(path: Path) -> Path:
    return path.with_name(path.name + ".f32")


def building_path(path: Path) -> Path:
    """Where a new graph's vectors are written until it is saved (one per process)."""
    return path.with_name(f"{path.name}.f32.{os.getpid()}.tmp")


def sidecar_paths(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + ".json"), path.with_name(path.name + ".npz")


def discard(path: Path) -> None:
    for part in (*sidecar_paths(path), vectors_path(path), path):
        part.unlink(missing_ok=True)
