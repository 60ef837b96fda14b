"""The vector store protocol: what ingest and search need from any backend.

The embedded default (LanceDB) and distributed backends implement this; one
store holds the vectors of one model for one collection.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, TypeVar

from pixseek.core.errors import WrongModelError
from pixseek.core.filters import Filter
from pixseek.core.records import Record
from pixseek.core.vectors import Vectors

ScoredRecords = list[tuple[Record, float]]
T = TypeVar("T")


class VectorStore(Protocol):
    @property
    def dim(self) -> int: ...

    def upsert(self, records: Sequence[Record], vectors: Vectors) -> None:
        """Insert or replace by id, atomically for the whole batch."""

    def delete(self, ids: Sequence[str]) -> None: ...

    def delete_where(self, flt: Filter) -> None: ...

    def get(self, ids: Sequence[str]) -> dict[str, Record]: ...

    def get_vectors(self, ids: Sequence[str]) -> dict[str, Vectors]: ...

    def search(self, vector: Vectors, k: int, flt: Filter | None = None) -> ScoredRecords:
        """The ``k`` nearest records by cosine similarity among those matching ``flt``."""

    def count(self, flt: Filter | None = None) -> int: ...

    def scan(
        self, flt: Filter | None = None, with_vectors: bool = False
    ) -> Iterator[tuple[list[Record], Vectors | None]]:
        """All matching records, in batches, without loading the whole table."""

    def page(self, flt: Filter | None, offset: int, limit: int) -> list[Record]:
        """Records in storage order, for browsing (not ranked)."""

    def refresh(self) -> None:
        """See every write committed so far, by any process (a writer calls this once it
        holds the collection's write lock, so it never works from a stale view)."""

    def drop(self) -> None:
        """Delete this table and all its vectors (an index that is no longer wanted)."""

    def persist(self) -> None:
        """Compact and make everything written so far durable."""


def check_vectors(records: Sequence[Record], vectors: Vectors, dim: int) -> None:
    """One vector of the store's dimension per record, or a clear error (another model)."""
    if vectors.shape != (len(records), dim):
        raise WrongModelError(
            f"vectors of shape {vectors.shape} do not fit this store "
            f"({len(records)} records of dimension {dim})"
        )


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """Consecutive slices of at most ``size`` items: bounded queries and writes."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
