"""Embedding models: the :class:`Embedder` protocol and the runtime table."""

from pixseek.models.base import BatchEmbedder, Embedder, l2_normalize
from pixseek.models.loading import DEFAULT_MODEL
from pixseek.models.registry import EmbedderOptions, load_embedder, register_runtime

__all__ = [
    "DEFAULT_MODEL",
    "BatchEmbedder",
    "Embedder",
    "EmbedderOptions",
    "l2_normalize",
    "load_embedder",
    "register_runtime",
]
