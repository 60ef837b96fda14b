"""A durable log of files that could not be indexed, kept in SQLite beside the store.

Each row is replaced when the same file fails again and removed when it later
succeeds, so ``pixseek info`` always shows the current state.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Failure:
    path: str
    error: str


def printable(text: str) -> str:
    """File names with undecodable bytes (kept by Python as surrogates) as valid text."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class FailureLog:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()  # one connection shared by server threads
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS failures (path TEXT PRIMARY KEY, error TEXT, at REAL)"
        )

    def record(self, failures: Iterable[Failure]) -> None:
        rows = [(printable(f.path), printable(f.error), time.time()) for f in failures]
        if rows:
            with self._lock, self._db:
                self._db.executemany("INSERT OR REPLACE INTO failures VALUES (?, ?, ?)", rows)

    def clear(self, paths: Iterable[str]) -> None:
        """Forget the failures of these files, and of the objects inside them."""
        rows = [(p, len(p) + 1, p + "#") for p in map(printable, paths)]
        if rows:
            with self._lock, self._db:
                self._db.executemany(
                    "DELETE FROM failures WHERE path = ? OR substr(path, 1, ?) = ?", rows
                )

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM failures").fetchone()[0])

    def list(self, limit: int = 100) -> list[Failure]:
        query = "SELECT path, error FROM failures ORDER BY path LIMIT ?"
        with self._lock:
            rows = self._db.execute(query, (limit,)).fetchall()
        return [Failure(path, error) for path, error in rows]

    def close(self) -> None:
        self._db.close()
