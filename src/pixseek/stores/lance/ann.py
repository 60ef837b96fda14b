"""An HNSW graph (faiss) over a table's vectors, kept in memory and saved beside the table.

Graph positions are dense (0, 1, 2, ... in insertion order) and each maps to the row's
stable Lance row id, so a hit is a row without any lookup by id. faiss keeps the float32
vectors itself and they are readable as one matrix, so filtered subsets and exact
fallbacks are matrix products over memory, never reads from disk. faiss cannot remove a
point: rows deleted or replaced since the graph was built are marked dead and excluded
by a bitmap inside the graph search (faiss applies it in C++ while it walks the graph).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pixseek.core.vectors import Vectors

M, EF_CONSTRUCTION, EF_SEARCH = 16, 200, 128
FORMAT = 2  # labels are graph positions mapped to stable row ids (1: hashed record ids)
Ints = NDArray[np.int64]
Mask = NDArray[np.bool_]


def bitmap(allowed: Mask) -> NDArray[np.uint8]:
    """faiss's ``IDSelectorBitmap`` layout: bit ``i % 8`` of byte ``i // 8``."""
    return np.packbits(allowed, bitorder="little")


class Graph:
    def __init__(self, dim: int, index: Any = None) -> None:
        import faiss

        self.dim = dim
        if index is None:
            index = faiss.IndexHNSWFlat(dim, M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = EF_CONSTRUCTION
        index.hnsw.efSearch = EF_SEARCH
        self._index: Any = index  # faiss's stubs lack the HNSW and flat storage members
        self.rowids: Ints = np.empty(0, np.int64)  # position -> stable row id
        self.alive: Mask = np.empty(0, np.bool_)  # position -> still the row's vector
        self._bits: NDArray[np.uint8] | None = None

    @property
    def size(self) -> int:
        return len(self.rowids)

    @property
    def dead(self) -> int:
        return int(self.size - np.count_nonzero(self.alive))

    def add(self, vectors: Vectors, rowids: Ints) -> Ints:
        """Append points; returns their positions."""
        import faiss

        faiss.omp_set_num_threads(os.cpu_count() or 1)
        start = self.size
        self._index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self.rowids = np.concatenate([self.rowids, np.asarray(rowids, np.int64)])
        self.alive = np.concatenate([self.alive, np.ones(len(rowids), np.bool_)])
        self._bits = None
        return np.arange(start, self.size, dtype=np.int64)

    def kill(self, positions: Ints) -> None:
        if len(positions):
            self.alive[positions] = False
            self._bits = None

    def vectors(self) -> Vectors:
        """All points as one read-only (size, dim) float32 matrix, without a copy."""
        import faiss

        if not self.size:
            return np.empty((0, self.dim), np.float32)
        storage: Any = faiss.downcast_index(self._index.storage)
        flat = faiss.rev_swig_ptr(storage.get_xb(), self.size * self.dim)
        view: Vectors = np.asarray(flat).reshape(self.size, self.dim)
        view.flags.writeable = False
        return view

    def search(
        self, queries: Vectors, k: int, allowed: Mask | None = None, ef: int = EF_SEARCH
    ) -> tuple[NDArray[np.float32], Ints]:
        """Top ``k`` (scores, positions) per query among ``allowed`` positions (default: the
        live ones); position -1 where the graph walk found fewer."""
        import faiss

        if allowed is None and self.dead == 0:
            selector_bits = None
        elif allowed is None:
            if self._bits is None:
                self._bits = bitmap(self.alive)
            selector_bits = self._bits
        else:
            selector_bits = bitmap(allowed)
        params: Any = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
        params.efSearch = max(ef, k)
        if selector_bits is not None:
            selector = faiss.IDSelectorBitmap(self.size, faiss.swig_ptr(selector_bits))
            params.sel = selector
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        faiss.omp_set_num_threads(1 if len(queries) == 1 else os.cpu_count() or 1)
        scores, positions = self._index.search(queries, k, params=params)
        return scores, positions.astype(np.int64)

    def save(self, path: Path, version: int) -> None:
        """The graph, its position map and the table version it matches; the metadata file
        is written last, so a reader never pairs a new graph with an old map."""
        import faiss

        meta_path, arrays_path = sidecar_paths(path)
        meta_path.unlink(missing_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        faiss.write_index(self._index, str(temporary))
        os.replace(temporary, path)
        temporary = arrays_path.with_name(arrays_path.name + ".tmp.npz")
        np.savez(temporary, rowids=self.rowids, alive=self.alive)
        os.replace(temporary, arrays_path)
        meta_path.write_text(json.dumps({"format": FORMAT, "version": version, "dim": self.dim}))

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
        except (OSError, ValueError, KeyError, RuntimeError):
            return None
        graph = cls(dim, index)
        if index.ntotal != len(rowids):
            return None
        graph.rowids, graph.alive = rowids.astype(np.int64), alive.astype(np.bool_)
        return graph, int(meta["version"])


def sidecar_paths(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + ".json"), path.with_name(path.name + ".npz")


def discard(path: Path) -> None:
    for part in (*sidecar_paths(path), path):
        part.unlink(missing_ok=True)
