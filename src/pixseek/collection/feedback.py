"""Judgements that last: every "more like this" / "less like this" a user gives, kept in
SQLite in the collection's directory.

A judgement says that, for a query, a result was relevant (+1) or not (-1). The query is
kept as text, as the id of an image or object of the collection, or, for a query that
cannot be stored as either (a new image, a raw vector), as the SHA-256 digest of its
bytes. Removing an image removes the judgements of it, of its objects, and of queries
made with them.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from pixseek.core.errors import InvalidInputError

QueryKind = Literal["text", "record", "digest"]
QUERY_KINDS: tuple[QueryKind, ...] = ("text", "record", "digest")
HELD_OUT_FRACTION = 0.25


@dataclass(frozen=True, slots=True)
class Judgement:
    query_kind: QueryKind
    query: str
    result_id: str
    value: int
    key_id: str = ""
    at: float = 0.0
    id: int = 0

    def __post_init__(self) -> None:
        if self.value not in (1, -1):
            raise InvalidInputError(f"a judgement is +1 or -1, got {self.value}")
        if self.query_kind not in QUERY_KINDS:
            raise InvalidInputError(f"query kind is one of {QUERY_KINDS}, got {self.query_kind!r}")
        if not self.query or not self.result_id:
            raise InvalidInputError("a judgement needs a query and a result id")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def digest(data: bytes) -> str:
    """The stored form of a query that is neither a text nor a record: its bytes' SHA-256."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def held_out(result_id: str, fraction: float = HELD_OUT_FRACTION) -> bool:
    """Whether judgements of this result are held out from training (for evaluation).

    Decided by the result's id alone, so a held-out image is never trained on, whatever
    the query, and training and evaluation agree without storing the split."""
    if fraction <= 0:
        return False
    value = int.from_bytes(hashlib.sha256(result_id.encode()).digest()[:4], "big")
    return value / 2**32 < fraction


class FeedbackLog:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()  # one connection shared by server threads
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS judgements (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "query_kind TEXT NOT NULL, query TEXT NOT NULL, result_id TEXT NOT NULL, "
            "value INTEGER NOT NULL, key_id TEXT NOT NULL, at REAL NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS by_result ON judgements (result_id)")

    def add(self, judgements: Iterable[Judgement]) -> list[Judgement]:
        """Store judgements (their time is now unless given); returns them with ids."""
        now = time.time()
        stored = []
        with self._lock, self._db:
            for j in judgements:
                at = j.at or now
                cursor = self._db.execute(
                    "INSERT INTO judgements (query_kind, query, result_id, value, key_id, at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (j.query_kind, j.query, j.result_id, j.value, j.key_id, at),
                )
                stored.append(
                    Judgement(
                        j.query_kind,
                        j.query,
                        j.result_id,
                        j.value,
                        j.key_id,
                        at,
                        int(cursor.lastrowid or 0),
                    )
                )
        return stored

    def list(self) -> list[Judgement]:
        query = "SELECT query_kind, query, result_id, value, key_id, at, id FROM judgements"
        with self._lock:
            rows = self._db.execute(query + " ORDER BY id").fetchall()
        return [Judgement(*row) for row in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM judgements").fetchone()[0])

    def forget(self, record_ids: Sequence[str]) -> int:
        """Drop the judgements of these records, and of queries made with them."""
        rows = [(i, i) for i in record_ids]
        if not rows:
            return 0
        with self._lock, self._db:
            before = self._db.total_changes
            self._db.executemany(
                "DELETE FROM judgements WHERE result_id = ? OR "
                "(query_kind = 'record' AND query = ?)",
                rows,
            )
            return self._db.total_changes - before

    def close(self) -> None:
        self._db.close()
