"""A sentence-transformers text encoder used as the text tower of an index.

``sentence-transformers/clip-ViT-B-32-multilingual-v1`` maps texts in 50+
languages into the space of ``openai/clip-vit-base-patch32``'s image tower; any
checkpoint saved by sentence-transformers (a hub id or a local directory) loads
the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from pixseek.core.errors import EmptyQueryError, ModelLoadError
from pixseek.core.vectors import Vectors, l2_normalize


class SentenceTextEncoder:
    def __init__(self, name: str, device: str = "cpu", batch_size: int = 32) -> None:
        self.name = name
        self._device = device
        self._batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> Any:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise ModelLoadError("separate text towers need sentence-transformers") from exc
        from pixseek.models.hf_clip.loading import _quiet_transformers, pretrained_kwargs

        _quiet_transformers()
        offline = pretrained_kwargs(self.name).get("local_files_only", False)
        try:
            return SentenceTransformer(self.name, device=self._device, local_files_only=offline)
        except Exception as exc:
            raise ModelLoadError(f"cannot load text model {self.name!r}: {exc}") from exc

    @property
    def dim(self) -> int:
        model = self.model
        measure = getattr(model, "get_embedding_dimension", None)  # sentence-transformers >= 6
        return int(measure() if measure else model.get_sentence_embedding_dimension())

    def embed_texts(self, texts: Sequence[str]) -> Vectors:
        cleaned = [text.strip() for text in texts]
        if any(not text for text in cleaned):
            raise EmptyQueryError("text to embed is empty")
        with self._lock:
            encoded = self.model.encode(
                cleaned, batch_size=self._batch_size, convert_to_numpy=True, show_progress_bar=False
            )
        return l2_normalize(np.asarray(encoded, dtype=np.float32))
