"""CLIP-family model logic: preprocessing with the checkpoint's own processor,
tokenisation policy, and the tower calls delegated to a runtime session."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pixseek.models.base import BatchEmbedder, Capabilities, Vectors
from pixseek.models.hf_clip.light import image_input_size
from pixseek.models.hf_clip.policy import TextPolicy
from pixseek.models.runtimes.base import TowerSession


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
        self.precision_note = ""  # why this precision (e.g. int8 measured, or rejected)
        # fast tokenizers are not safe to call from several threads at once
        self._tokenizer_lock = threading.Lock()
        self.processor = processor
        self.session = session
        self.text_policy = text_policy

    @cached_property
    def capabilities(self) -> Capabilities:
        # read once, from the checkpoint's files when they say, so that a text search never
        # loads the image processor (and transformers) just to learn the input size
        size = image_input_size(self.name) or self.input_size
        return Capabilities(image=True, text=True, input_size=size)

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
        with self._tokenizer_lock:
            return self.text_policy.tokenize(self.processor.tokenizer, texts)

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
