"""The embedder protocol every model backend implements.

Following llm's ``EmbeddingModel``: callers see one small protocol; backends
subclass :class:`BatchEmbedder` and implement one batch method per modality,
while batching, validation and normalisation live here once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pixseek.core.errors import EmptyQueryError, UnsupportedQueryError
from pixseek.core.vectors import Vectors, l2_normalize

__all__ = [
    "BatchEmbedder",
    "Capabilities",
    "Embedder",
    "PreparedImageEmbedder",
    "Vectors",
    "l2_normalize",
]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an embedder can do, declared by the backend instead of probed by its callers.

    ``text``: it embeds text into the image space (an image-only family such as a
    copy-detection descriptor does not); ``input_size``: the side, in pixels, images
    are resized to before the model sees them (decoding may stop early, at a few
    times that size); None when the model takes any size.
    """

    image: bool = True
    text: bool = True
    input_size: int | None = None


IMAGE_AND_TEXT = Capabilities()
IMAGE_ONLY = Capabilities(text=False)


def require_text(embedder: Embedder) -> None:
    """Refuse a text query on a model that has no text tower, saying what works instead."""
    if not embedder.capabilities.text:
        raise UnsupportedQueryError(
            f"model {embedder.name!r} embeds images only: search it by image or object "
            "(pixseek similar), not by text"
        )


@runtime_checkable
class Embedder(Protocol):
    """Maps images and texts into one vector space (rows are L2-normalised float32)."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def capabilities(self) -> Capabilities: ...

    def embed_images(self, images: Sequence[Image.Image]) -> Vectors: ...

    def embed_texts(self, texts: Sequence[str]) -> Vectors: ...


class BatchEmbedder(ABC):
    """Base for backends: splits input into batches and normalises the output.

    A text model overrides :meth:`embed_text_batch`; an image-only one passes
    ``IMAGE_ONLY`` and leaves it alone.
    """

    def __init__(
        self, name: str, dim: int, batch_size: int = 32, capabilities: Capabilities = IMAGE_AND_TEXT
    ) -> None:
        self._name = name
        self._dim = dim
        self._capabilities = capabilities
        self.batch_size = max(1, batch_size)

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    @abstractmethod
    def embed_image_batch(self, images: Sequence[Image.Image]) -> NDArray[np.floating]:
        """Raw (unnormalised) embeddings of at most ``batch_size`` RGB images."""

    def embed_text_batch(self, texts: Sequence[str]) -> NDArray[np.floating]:
        """Raw (unnormalised) embeddings of at most ``batch_size`` texts (text models)."""
        raise UnsupportedQueryError(f"model {self.name!r} has no text tower")

    def embed_images(self, images: Sequence[Image.Image]) -> Vectors:
        return self._batched(list(images), self.embed_image_batch)

    def embed_texts(self, texts: Sequence[str]) -> Vectors:
        require_text(self)
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
