"""The embedder protocol every model backend implements.

Following llm's ``EmbeddingModel``: callers see one small protocol; backends
subclass :class:`BatchEmbedder` and implement one batch method per modality,
while batching, validation and normalisation live here once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pixseek.core.errors import EmptyQueryError
from pixseek.core.vectors import Vectors, l2_normalize

__all__ = ["BatchEmbedder", "Embedder", "PreparedImageEmbedder", "Vectors", "l2_normalize"]


@runtime_checkable
class Embedder(Protocol):
    """Maps images and texts into one vector space (rows are L2-normalised float32)."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed_images(self, images: Sequence[Image.Image]) -> Vectors: ...

    def embed_texts(self, texts: Sequence[str]) -> Vectors: ...


class BatchEmbedder(ABC):
    """Base for backends: splits input into batches and normalises the output."""

    def __init__(self, name: str, dim: int, batch_size: int = 32) -> None:
        self._name = name
        self._dim = dim
        self.batch_size = max(1, batch_size)

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    @abstractmethod
    def embed_image_batch(self, images: Sequence[Image.Image]) -> NDArray[np.floating]:
        """Raw (unnormalised) embeddings of at most ``batch_size`` RGB images."""

    @abstractmethod
    def embed_text_batch(self, texts: Sequence[str]) -> NDArray[np.floating]:
        """Raw (unnormalised) embeddings of at most ``batch_size`` texts."""

    def embed_images(self, images: Sequence[Image.Image]) -> Vectors:
        return self._batched(list(images), self.embed_image_batch)

    def embed_texts(self, texts: Sequence[str]) -> Vectors:
        cleaned = [text.strip() for text in texts]
        if any(not text for text in cleaned):
            raise EmptyQueryError("text to embed is empty")
        return self._batched(cleaned, self.embed_text_batch)

    def _batched(self, items: list, run) -> Vectors:  # type: ignore[type-arg, no-untyped-def]
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [run(items[i : i + self.batch_size]) for i in range(0, len(items), self.batch_size)]
        return l2_normalize(np.concatenate(parts, axis=0))


@runtime_checkable
class PreparedImageEmbedder(Protocol):
    """Optional capability: preprocessing split from inference.

    Ingest prepares images on worker threads (decode, resize, normalise) and
    keeps only the small model inputs in memory, never full-size pictures.
    """

    def prepare_image(self, image: Image.Image) -> dict[str, NDArray[np.generic]]: ...

    def embed_prepared(self, items: Sequence[dict[str, NDArray[np.generic]]]) -> Vectors: ...
