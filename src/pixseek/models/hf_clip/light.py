"""What a text query needs from a checkpoint, without importing transformers.

Importing transformers costs seconds; a CLI search only needs the tokenizer
(``tokenizer.json``, run by the ``tokenizers`` library that transformers' fast
tokenizers wrap) and a few config values. Anything this module cannot read
exactly (no ``tokenizer.json``, values left to transformers' defaults) returns
``None`` and the caller falls back to transformers, so results never differ.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray


def checkpoint_file(model: str, filename: str) -> Path | None:
    """A file of a local model directory, or of a hub model already in the local cache."""
    directory = Path(model)
    if directory.is_dir():
        path = directory / filename
        return path if path.is_file() else None
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, filename)
    except Exception:
        return None
    return Path(cached) if isinstance(cached, str) else None


def read_json(model: str, filename: str) -> dict[str, Any] | None:
    path = checkpoint_file(model, filename)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def image_input_size(model: str) -> int | None:
    """The side images are resized to, from the checkpoint's processor files (crop size,
    else size), or None when they do not say; the same rule as ``ClipEmbedder.input_size``."""
    for filename, key in (
        ("preprocessor_config.json", ""),
        ("processor_config.json", "image_processor"),
    ):
        data = read_json(model, filename)
        config = (data or {}).get(key) if key else data
        if not isinstance(config, dict):
            continue
        size = config.get("crop_size") or config.get("size") or {}
        if isinstance(size, int):
            return size
        if isinstance(size, dict):
            values = [v for k, v in size.items() if k in {"height", "width", "shortest_edge"}]
            if values and all(isinstance(v, int) for v in values):
                return int(max(values))
    return None


@dataclass(frozen=True, slots=True)
class TextConfig:
    """The config values text embedding needs: model type, dimension, positions."""

    model_type: str
    dim: int
    max_positions: int


def text_config(model: str) -> TextConfig | None:
    config = read_json(model, "config.json")
    if config is None:
        return None
    text = config.get("text_config") or {}
    dim = config.get("projection_dim") or text.get("hidden_size")
    positions = text.get("max_position_embeddings")
    model_type = config.get("model_type")
    if not (isinstance(dim, int) and isinstance(positions, int) and isinstance(model_type, str)):
        return None  # left to transformers' defaults: let transformers read it
    return TextConfig(model_type, dim, positions)


class FastTokenizer:
    """The checkpoint's ``tokenizer.json`` run directly, called like a transformers tokenizer
    for the arguments pixseek uses (padding, truncation, max_length, numpy tensors)."""

    def __init__(self, backend: Any, pad_id: int, model_max_length: int | None) -> None:
        self._backend = backend
        self.pad_token_id = pad_id
        self.model_max_length = model_max_length

    @classmethod
    def load(cls, model: str) -> FastTokenizer | None:
        path = checkpoint_file(model, "tokenizer.json")
        settings = read_json(model, "tokenizer_config.json")
        if path is None or settings is None:
            return None
        from tokenizers import Tokenizer

        backend = Tokenizer.from_file(str(path))
        pad = settings.get("pad_token")
        if isinstance(pad, dict):
            pad = pad.get("content")
        pad_id = backend.token_to_id(pad) if isinstance(pad, str) else None
        if pad_id is None or settings.get("padding_side", "right") != "right":
            return None
        limit = settings.get("model_max_length")
        return cls(backend, pad_id, int(limit) if isinstance(limit, int | float) else None)

    def __call__(
        self,
        texts: Sequence[str],
        padding: bool | str = True,
        truncation: bool = True,
        max_length: int | None = None,
        return_tensors: str = "np",
    ) -> dict[str, NDArray[np.int64]]:
        backend = self._backend
        if truncation and max_length:
            backend.enable_truncation(max_length=max_length)
        else:
            backend.no_truncation()
        length = max_length if padding == "max_length" else None
        backend.enable_padding(pad_id=self.pad_token_id, length=length)
        encodings = backend.encode_batch(list(texts))
        return {
            "input_ids": np.asarray([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.asarray([e.attention_mask for e in encodings], dtype=np.int64),
        }


class LazyProcessor:
    """A processor whose tokenizer loads fast and whose image processor loads when an image
    is first processed: read from the checkpoint's config where it is CLIP's own
    (:class:`~pixseek.models.hf_clip.pixels.ClipPixels`), else transformers'."""

    def __init__(self, model: str, tokenizer: Any) -> None:
        self._model = model
        self.tokenizer = tokenizer
        self._images: Any = None

    @property
    def image_processor(self) -> Any:
        if self._images is None:
            from pixseek.models.registry import LOADING_LOCK

            with LOADING_LOCK:  # ingest threads prepare images at once: load it once
                if self._images is None:
                    self._images = _image_processor(self._model)
        return self._images


def _image_processor(model: str) -> Any:
    from pixseek.models.hf_clip.pixels import ClipPixels

    light = ClipPixels.load(model)
    if light is not None:
        return light
    from pixseek.models.hf_clip.loading import load_processor

    return load_processor(model).image_processor
