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


class Workspace:
    def __init__(self, root: Path, defaults: EmbedderOptions | None = None) -> None:
        self.root = root.expanduser()
        self.root.mkdir(parents=True, exist_ok=True)
        self.defaults = defaults or EmbedderOptions()
        self._open: dict[str, Collection] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """Collections here; folders with names the API could not address are left out."""
        return sorted(
            p.name for p in self.root.iterdir() if valid_name(p.name) and p.is_dir() and exists(p)
        )

    def open_all(self) -> Iterator[tuple[str, Collection]]:
        """Every collection that opens; a broken one is logged and skipped, never fatal."""
        for name in self.names():
            try:
                yield name, self.get(name)
            except PixseekError as exc:
                log.warning("skipping collection %r: %s", name, exc)

    def get(self, name: str) -> Collection:
        check_name(name)
        with self._lock:
            cached = self._open.get(name)
            if cached is not None and not cached.closed and not cached.stale:
                return cached
            path = self.root / name
            if not exists(path):
                self._open.pop(name, None)
                raise CollectionNotFoundError(f"no collection named {name!r}")
            self._open[name] = open_collection(path, self.defaults)
            return self._open[name]

    def warm(self) -> None:
        """Open every collection and load its model (errors surface on first use instead)."""
        for _, collection in self.open_all():
            try:
                collection.index().embedder  # noqa: B018 - loading is the point
            except Exception:  # a broken model must not stop the server
                continue

    def create(self, name: str, model: str = "") -> Collection:
        check_name(name)
        with self._lock:
            path = self.root / name
            if exists(path):
                raise CollectionExistsError(f"collection {name!r} already exists")
            options = self.defaults.with_model(model) if model else self.defaults
            collection = open_collection(path, options, create=True)
            self._open[name] = collection
            return collection

    def delete(self, name: str) -> None:
        """Delete atomically: wait for writers, rename the folder aside, then remove it.

        Writers that race the deletion find the collection gone (404) instead of
        writing into a half-deleted folder.
        """
        check_name(name)
        with self._lock:
            path = self.root / name
            if not exists(path):
                raise CollectionNotFoundError(f"no collection named {name!r}")
            collection = self._open.pop(name, None) or open_collection(path, self.defaults)
            trash = self.root / f"{TRASH_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
            with collection.writing():
                collection.close()
                path.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
