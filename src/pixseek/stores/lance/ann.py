"""An in-process HNSW index (hnswlib) kept beside a LanceDB table, for large tables.

LanceDB stays the source of truth (records, vectors, versions); the HNSW graph only
finds candidates fast. It is saved beside the table with the table version it
matches, updated in place by this process's writes, and used only while it matches
the table: a table written by another process is searched exactly until the next
``persist`` (the end of an ingest, or ``pixseek optimize``) rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from pixseek.core.vectors import Vectors

M, EF_CONSTRUCTION, EF_SEARCH = 16, 200, 128


def label_of(record_id: str) -> int:
    """A stable 63-bit integer for an id (hnswlib labels are integers)."""
    digest = hashlib.blake2b(record_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


class HnswSidecar:
    def __init__(self, directory: Path, table: str, dim: int) -> None:
        self.path = directory / f"{table}.hnsw"
        self.meta_path = directory / f"{table}.hnsw.json"
        self.dim = dim
        self.version = -1
        self._index: object | None = None
        self._ids: dict[int, str] = {}
        self._tried = -1
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return len(self._ids)

    @property
    def available(self) -> bool:
        """A graph is in memory or saved beside the table (a stat, no read)."""
        return self._index is not None or self.meta_path.is_file()

    @property
    def ready(self) -> bool:
        return self._index is not None

    def load(self, table_version: int) -> bool:
        """Load the saved graph if it matches ``table_version`` (tried once per version)."""
        import hnswlib

        if self._tried == table_version:
            return False
        self._tried = table_version
        try:
            meta = json.loads(self.meta_path.read_text())
        except (OSError, ValueError):
            return False
        if meta.get("version") != table_version or not self.path.is_file():
            return False
        index = hnswlib.Index(space="ip", dim=self.dim)
        index.load_index(str(self.path), max_elements=int(meta["capacity"]))
        index.set_ef(EF_SEARCH)
        ids = meta["ids"]
        with self._lock:
            self._index, self._ids, self.version = (
                index,
                {label_of(i): i for i in ids},
                table_version,
            )
        return True

    def build(self, ids: Sequence[str], vectors: Vectors, table_version: int) -> None:
        import hnswlib

        capacity = max(1024, int(len(ids) * 1.3))
        index = hnswlib.Index(space="ip", dim=self.dim)
        index.init_index(max_elements=capacity, ef_construction=EF_CONSTRUCTION, M=M)
        index.set_num_threads(os.cpu_count() or 1)
        if len(ids):
            index.add_items(vectors, np.fromiter((label_of(i) for i in ids), np.int64, len(ids)))
        index.set_ef(EF_SEARCH)
        with self._lock:
            self._index, self._ids = index, {label_of(i): i for i in ids}
            self.version = table_version

    def add(self, ids: Sequence[str], vectors: Vectors) -> None:
        with self._lock:
            index = self._index
            if index is None or not len(ids):
                return
            needed = len(self._ids) + len(ids)
            if needed > index.get_max_elements():  # type: ignore[attr-defined]
                index.resize_index(int(needed * 1.3))  # type: ignore[attr-defined]
            labels = np.fromiter((label_of(i) for i in ids), np.int64, len(ids))
            index.add_items(vectors, labels)  # type: ignore[attr-defined]  # replaces, undeletes
            self._ids.update(zip(labels.tolist(), ids, strict=True))

    def remove(self, ids: Iterable[str]) -> None:
        with self._lock:
            if self._index is None:
                return
            for record_id in ids:
                label = label_of(record_id)
                if self._ids.pop(label, None) is not None:
                    self._index.mark_deleted(label)  # type: ignore[attr-defined]

    def query(self, vector: Vectors, k: int) -> list[str]:
        """Up to ``k`` candidate ids, nearest first."""
        with self._lock:
            index = self._index
            if index is None or not self._ids:
                return []
            k = min(k, len(self._ids))
            labels, _ = index.knn_query(np.asarray(vector, np.float32), k=k)  # type: ignore[attr-defined]
            return [self._ids[int(label)] for label in labels[0] if int(label) in self._ids]

    def discard(self) -> None:
        with self._lock:
            self._index, self._ids, self.version = None, {}, -1
        self.path.unlink(missing_ok=True)
        self.meta_path.unlink(missing_ok=True)

    def save(self, table_version: int) -> None:
        with self._lock:
            if self._index is None:
                return
            temporary = self.path.with_name(self.path.name + ".tmp")
            self._index.save_index(str(temporary))  # type: ignore[attr-defined]
            os.replace(temporary, self.path)
            meta = {
                "version": table_version,
                "capacity": self._index.get_max_elements(),  # type: ignore[attr-defined]
                "ids": list(self._ids.values()),
            }
            self.meta_path.write_text(json.dumps(meta))
            self.version = table_version
