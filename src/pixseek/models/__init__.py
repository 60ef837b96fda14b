"""Embedding models: the :class:`Embedder` protocol and the table of builders."""

from pixseek.models.base import BatchEmbedder, Embedder, l2_normalize
from pixseek.models.options import DEFAULT_MODEL, EmbedderOptions
from pixseek.models.registry import load_embedder, register_embedder

__all__ = [
    "DEFAULT_MODEL",
    "BatchEmbedder",
    "Embedder",
    "EmbedderOptions",
    "l2_normalize",
    "load_embedder",
    "register_embedder",
]
