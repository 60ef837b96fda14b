"""CLIP-family model logic: preprocessing with the checkpoint's own processor,
tokenisation policy, and the tower calls delegated to a runtime session."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pixseek.models.base import BatchEmbedder, Vectors
from pixseek.sessions.base import TowerSession

PAD_TO_MAX_LENGTH = frozenset({"siglip", "siglip2"})


@dataclass(frozen=True, slots=True)
class TextPolicy:
    """How texts are tokenised: SigLIP was trained on max-length padding with no
    attention mask (the padding tokens are part of its input); CLIP masks padding."""

    max_length: int
    pad_to_max: bool

    @property
    def keys(self) -> tuple[str, ...]:
        return ("input_ids",) if self.pad_to_max else ("input_ids", "attention_mask")

    @classmethod
    def for_config(cls, config: Any, tokenizer: Any) -> TextPolicy:
        model_type = str(getattr(config, "model_type", ""))
        positions = int(getattr(config.text_config, "max_position_embeddings", 77))
        tokenizer_max = int(getattr(tokenizer, "model_max_length", positions) or positions)
        max_length = min(positions, tokenizer_max)
        if model_type in PAD_TO_MAX_LENGTH:
            return cls(max_length=min(max_length, 64), pad_to_max=True)
        return cls(max_length=max_length, pad_to_max=False)


class ClipEmbedder(BatchEmbedder):
    def __init__(
        self,
        name: str,
        dim: int,
        processor: Any,
        session: TowerSession,
        text_policy: TextPolicy,
        batch_size: int = 32,
        runtime: str = "torch",
        precision: str = "fp32",
    ) -> None:
        super().__init__(name, dim, batch_size)
        self.runtime = runtime
        self.precision = precision
        # fast tokenizers are not safe to call from several threads at once
        self._tokenizer_lock = threading.Lock()
        self.processor = processor
        self.session = session
        self.text_policy = text_policy

    @property
    def input_size(self) -> int:
        """The side (pixels) images are resized to before the model sees them."""
        processor = self.processor.image_processor
        size = getattr(processor, "crop_size", None) or getattr(processor, "size", None) or {}
        values = [v for k, v in dict(size).items() if k in {"height", "width", "shortest_edge"}]
        return int(max(values)) if values else 224

    def preprocess_images(self, images: Sequence[Image.Image]) -> dict[str, NDArray[Any]]:
        rgb = [image if image.mode == "RGB" else image.convert("RGB") for image in images]
        encoded = self.processor.image_processor(images=rgb, return_tensors="np")
        return {key: np.asarray(value) for key, value in encoded.items()}

    def tokenize(self, texts: Sequence[str]) -> dict[str, NDArray[Any]]:
        policy = self.text_policy
        with self._tokenizer_lock:
            encoded = self.processor.tokenizer(
                list(texts),
                padding="max_length" if policy.pad_to_max else True,
                truncation=True,
                max_length=policy.max_length,
                return_tensors="np",
            )
        return {
            key: np.asarray(encoded[key], dtype=np.int64) for key in policy.keys if key in encoded
        }

    def prepare_image(self, image: Image.Image) -> dict[str, NDArray[Any]]:
        return {key: value[0] for key, value in self.preprocess_images([image]).items()}

    def embed_prepared(self, items: Sequence[dict[str, NDArray[Any]]]) -> Vectors:
        return self._batched(list(items), self._run_prepared)

    def _run_prepared(self, items: Sequence[dict[str, NDArray[Any]]]) -> NDArray[np.floating]:
        stacked = {key: np.stack([item[key] for item in items]) for key in items[0]}
        return self.session.encode_images(stacked)

    def embed_image_batch(self, images: Sequence[Image.Image]) -> NDArray[np.floating]:
        return self.session.encode_images(self.preprocess_images(images))

    def embed_text_batch(self, texts: Sequence[str]) -> NDArray[np.floating]:
        return self.session.encode_texts(self.tokenize(texts))
