"""An index: one embedder and the vector store holding its vectors, under a name.

A collection has one or more; search, ingest and jobs receive the index they
work on instead of reaching into the collection. The embedder is loaded on
first use, so commands that only read records never load a model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from pixseek.collection.manifest import READY, IndexEntry
from pixseek.core.errors import WrongModelError
from pixseek.models.base import Embedder
from pixseek.stores.base import VectorStore

EmbedderSource = Embedder | Callable[[], Embedder]


class Index:
    def __init__(
        self, name: str, entry: IndexEntry, store: VectorStore, embedder: EmbedderSource
    ) -> None:
        self.name = name
        self.entry = entry
        self.store = store
        self._embedder_source = embedder
        self._embedder: Embedder | None = None
        self._lock = threading.Lock()  # server threads must load the model once

    @property
    def model(self) -> str:
        return self.entry.model

    @property
    def dim(self) -> int:
        return self.entry.dim

    @property
    def ready(self) -> bool:
        return self.entry.state == READY

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    source = self._embedder_source
                    embedder = source if isinstance(source, Embedder) else source()
                    check_model(self.entry, embedder)
                    self._embedder = embedder
        return self._embedder

    def bind(self, embedder: Embedder) -> None:
        """Use this already-loaded embedder (it must be the index's model)."""
        check_model(self.entry, embedder)
        with self._lock:
            self._embedder = embedder


def check_model(entry: IndexEntry, embedder: Embedder) -> None:
    """Vectors of different models are not comparable: refuse to mix them."""
    if embedder.name != entry.key:
        raise WrongModelError(
            f"this index holds vectors of model {entry.key!r}; they are not comparable "
            f"with {embedder.name!r}. Use the same --model, or add the model with "
            "`pixseek reindex --model`."
        )
    if entry.dim != embedder.dim:
        raise WrongModelError(
            f"model {embedder.name!r} now gives {embedder.dim}-d vectors, "
            f"but the index holds {entry.dim}-d ones"
        )
