"""Vector stores behind one protocol; LanceDB is the embedded default."""

from pixseek.stores.base import ScoredRecords, VectorStore
from pixseek.stores.registry import open_store, register_store

__all__ = ["ScoredRecords", "VectorStore", "open_store", "register_store"]
