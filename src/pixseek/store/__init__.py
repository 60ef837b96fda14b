"""Vector stores behind one protocol; LanceDB is the embedded default."""

from pixseek.store.base import VectorStore
from pixseek.store.filters import Condition, Filter

__all__ = ["Condition", "Filter", "VectorStore"]
