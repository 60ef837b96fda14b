"""How a CLIP-family checkpoint wants its texts tokenised.

Inference and training both tokenise through :meth:`TextPolicy.tokenize`, so a
fine-tuned model is trained on exactly the inputs it sees at search time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

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
        positions = int(getattr(config.text_config, "max_position_embeddings", 77))
        tokenizer_max = getattr(tokenizer, "model_max_length", None)
        return cls.for_values(str(getattr(config, "model_type", "")), positions, tokenizer_max)

    @classmethod
    def for_values(
        cls, model_type: str, positions: int, tokenizer_max: int | float | None
    ) -> TextPolicy:
        max_length = min(positions, int(tokenizer_max or positions))
        if model_type in PAD_TO_MAX_LENGTH:
            return cls(max_length=min(max_length, 64), pad_to_max=True)
        return cls(max_length=max_length, pad_to_max=False)

    def tokenize(self, tokenizer: Any, texts: Sequence[str]) -> dict[str, NDArray[np.int64]]:
        """Token arrays with exactly the keys the model's text tower takes."""
        encoded = tokenizer(
            list(texts),
            padding="max_length" if self.pad_to_max else True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="np",
        )
        return {
            key: np.asarray(encoded[key], dtype=np.int64) for key in self.keys if key in encoded
        }
