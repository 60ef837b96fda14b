"""A workspace: a directory whose subdirectories are collections, addressed by name.

It keeps one open :class:`Collection` per name, so a server shares loaded
models and store handles between requests.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from pixseek.collection.collection import Collection, exists, open_collection
from pixseek.core.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    InvalidInputError,
    PixseekError,
)
from pixseek.models.options import EmbedderOptions

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
TRASH_PREFIX = ".deleting-"
log = logging.getLogger(__name__)


def check_name(name: str) -> str:
    if not NAME.fullmatch(name) or ".." in name:
        raise InvalidInputError(
            f"invalid collection name {name!r}: use 1-64 letters, digits, '.', '_' or '-'"
        )
    return name


def valid_name(name: str) -> bool:
    return bool(NAME.fullmatch(name)) and ".." not in name


@dataclass
class _Slot:
    """One name's state: its open handle, the requests using it, and whether a
    deletion is under way. Each name has its own lock, so waiting on one collection
    (opening it, or deleting it while a writer finishes) never stalls the others."""

    changed: threading.Condition = field(default_factory=threading.Condition)
    collection: Collection | None = None
    users: int = 0
    deleting: bool = False
    refs: int = 0  # threads holding this slot; an idle slot without a handle is dropped


class Workspace:
    def __init__(self, root: Path, defaults: EmbedderOptions | None = None) -> None:
        self.root = root.expanduser()
        self.root.mkdir(parents=True, exist_ok=True)
        self.defaults = defaults or EmbedderOptions()
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()  # guards ``_slots`` only; never held while waiting

    def names(self) -> list[str]:
        """Collections here; folders with names the API could not address are left out."""
        return sorted(
            p.name for p in self.root.iterdir() if valid_name(p.name) and p.is_dir() and exists(p)
        )

    def open_all(self) -> Iterator[tuple[str, Collection]]:
        """Every collection that opens, each in use (see :meth:`using`) while the caller
        holds it; one deleted meanwhile is left out, a broken one is logged and skipped."""
        for name in self.names():
            try:
                with self.using(name) as collection:
                    yield name, collection
            except CollectionNotFoundError:
                continue
            except PixseekError as exc:
                log.warning("skipping collection %r: %s", name, exc)

    @contextmanager
    def _slot(self, name: str) -> Iterator[_Slot]:
        """The slot of ``name``, kept in the table while held; names that open nothing
        leave no slot behind, so unknown names cannot grow the table."""
        check_name(name)
        with self._lock:
            slot = self._slots.setdefault(name, _Slot())
            slot.refs += 1
        try:
            yield slot
        finally:
            with self._lock:
                slot.refs -= 1
                if slot.refs == 0 and slot.collection is None:
                    del self._slots[name]

    def _open(self, name: str, slot: _Slot) -> Collection:
        """The open handle of ``name``; the caller holds ``slot.changed``."""
        if slot.deleting:
            raise CollectionNotFoundError(f"collection {name!r} is being deleted")
        cached = slot.collection
        if cached is not None and not cached.closed and not cached.stale:
            return cached
        path = self.root / name
        if not exists(path):
            slot.collection = None
            raise CollectionNotFoundError(f"no collection named {name!r}")
        slot.collection = open_collection(path, self.defaults)
        return slot.collection

    def get(self, name: str) -> Collection:
        with self._slot(name) as slot, slot.changed:
            return self._open(name, slot)

    @contextmanager
    def using(self, name: str) -> Iterator[Collection]:
        """The collection, kept from deletion until the block ends: a request either
        completes on it or, once a deletion has begun, finds it gone."""
        with self._slot(name) as slot:
            with slot.changed:
                collection = self._open(name, slot)
                slot.users += 1
            try:
                yield collection
            finally:
                with slot.changed:
                    slot.users -= 1
                    slot.changed.notify_all()

    def warm(self) -> None:
        """Open every collection and load its model (errors surface on first use instead)."""
        for _, collection in self.open_all():
            try:
                collection.index().embedder  # noqa: B018 - loading is the point
            except Exception:  # a broken model must not stop the server
                continue

    def create(self, name: str, model: str = "", family: str = "auto") -> Collection:
        with self._slot(name) as slot, slot.changed:
            path = self.root / name
            if exists(path) or slot.deleting:
                raise CollectionExistsError(f"collection {name!r} already exists")
            options = self.defaults.with_model(model) if model else self.defaults
            if family != "auto":
                options = replace(options, family=family)
            slot.collection = open_collection(path, options, create=True)
            return slot.collection

    def delete(self, name: str) -> None:
        """Delete atomically: refuse new users, let current ones finish, wait for
        writers, rename the folder aside, then remove it.

        Requests that arrive meanwhile find the collection gone (404) instead of
        reading or writing a half-deleted folder.
        """
        path = self.root / name
        trash = self.root / f"{TRASH_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
        with self._slot(name) as slot:
            with slot.changed:
                if slot.deleting or not exists(path):
                    raise CollectionNotFoundError(f"no collection named {name!r}")
                slot.deleting = True
                collection, slot.collection = slot.collection, None
            try:
                with slot.changed:
                    slot.changed.wait_for(lambda: slot.users == 0)
                if collection is None or collection.closed:
                    collection = open_collection(path, self.defaults)
                with collection.writing():
                    collection.close()
                    path.rename(trash)
            finally:
                with slot.changed:
                    slot.deleting = False
        shutil.rmtree(trash, ignore_errors=True)
