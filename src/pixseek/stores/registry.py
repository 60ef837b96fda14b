"""The table of store backends, chosen by the location's URI scheme.

A plain path (or ``lance://PATH``) is the embedded Lance default; other schemes
(``milvus://HOST:PORT``) are distributed engines registered here or through the
``pixseek.stores`` entry-point group (the value is a :data:`StoreFactory`).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from pixseek.core.errors import UnknownBackendError
from pixseek.stores.base import VectorStore

StoreFactory = Callable[[str, str, int], VectorStore]  # (location, table, dim)
ENTRY_POINT_GROUP = "pixseek.stores"
EMBEDDED = "lance"


def _lance(location: str, table: str, dim: int) -> VectorStore:
    from pixseek.stores.lance.store import LanceStore

    return LanceStore(location, table, dim)


def _milvus(location: str, table: str, dim: int) -> VectorStore:
    from pixseek.stores.milvus.store import MilvusStore

    return MilvusStore(location, table, dim)


_STORES: dict[str, StoreFactory] = {
    EMBEDDED: _lance,
    "milvus": _milvus,
    "milvus+https": _milvus,
}


def register_store(scheme: str, factory: StoreFactory) -> None:
    _STORES[scheme] = factory


def scheme_of(location: str) -> str:
    scheme, sep, _ = location.partition("://")
    return scheme.lower() if sep else EMBEDDED


def open_store(location: str, table: str, dim: int) -> VectorStore:
    """Open (creating if needed) ``table`` of ``dim``-d vectors at ``location``."""
    scheme = scheme_of(location)
    if scheme not in _STORES:
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            _STORES.setdefault(entry.name, entry.load())
    factory = _STORES.get(scheme)
    if factory is None:
        raise UnknownBackendError(
            f"unknown store {scheme!r} in {location!r}; available: {', '.join(sorted(_STORES))}"
        )
    if scheme == EMBEDDED and "://" in location:
        location = location.split("://", 1)[1]
    return factory(location, table, dim)
