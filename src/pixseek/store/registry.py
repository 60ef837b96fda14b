"""The table of store backends a collection can be kept in."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pixseek.errors import UnknownBackendError
from pixseek.store.base import VectorStore

StoreFactory = Callable[[Path, str, int], VectorStore]


def _lance(directory: Path, table: str, dim: int) -> VectorStore:
    from pixseek.store.lance import LanceStore

    return LanceStore(directory / "lance", table, dim)


_STORES: dict[str, StoreFactory] = {"lance": _lance}


def register_store(name: str, factory: StoreFactory) -> None:
    _STORES[name] = factory


def open_store(backend: str, directory: Path, table: str, dim: int) -> VectorStore:
    factory = _STORES.get(backend)
    if factory is None:
        raise UnknownBackendError(
            f"unknown store backend {backend!r}; available: {', '.join(sorted(_STORES))}"
        )
    return factory(directory, table, dim)
