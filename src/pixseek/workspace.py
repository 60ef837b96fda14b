"""A workspace: a directory whose subdirectories are collections, addressed by name.

It keeps one open :class:`Collection` per name, so a server shares loaded
models and store handles between requests.
"""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

from pixseek.collection import Collection, exists, open_collection
from pixseek.errors import CollectionExistsError, CollectionNotFoundError, InvalidInputError
from pixseek.models.registry import EmbedderOptions

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_name(name: str) -> str:
    if not NAME.match(name) or ".." in name:
        raise InvalidInputError(
            f"invalid collection name {name!r}: use 1-64 letters, digits, '.', '_' or '-'"
        )
    return name


class Workspace:
    def __init__(self, root: Path, defaults: EmbedderOptions | None = None) -> None:
        self.root = root.expanduser()
        self.root.mkdir(parents=True, exist_ok=True)
        self.defaults = defaults or EmbedderOptions()
        self._open: dict[str, Collection] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and exists(p))

    def get(self, name: str) -> Collection:
        check_name(name)
        with self._lock:
            if name not in self._open:
                path = self.root / name
                if not exists(path):
                    raise CollectionNotFoundError(f"no collection named {name!r}")
                self._open[name] = open_collection(path, self.defaults)
            return self._open[name]

    def warm(self) -> None:
        """Open every collection and load its model (errors surface on first use instead)."""
        for name in self.names():
            try:
                self.get(name).embedder  # noqa: B018 - loading is the point
            except Exception:  # a broken collection must not stop the server
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
        check_name(name)
        with self._lock:
            path = self.root / name
            if not exists(path):
                raise CollectionNotFoundError(f"no collection named {name!r}")
            collection = self._open.pop(name, None)
            if collection is not None:
                collection.close()
            shutil.rmtree(path)
