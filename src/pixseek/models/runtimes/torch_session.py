"""Eager PyTorch execution of a transformers CLIP-family model."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from pixseek.models.runtimes.base import Inputs


def features_tensor(output: Any) -> torch.Tensor:
    """``get_*_features`` returns a tensor in transformers 4 and a model output in 5."""
    if isinstance(output, torch.Tensor):
        return output
    pooled = getattr(output, "pooler_output", None)
    if not isinstance(pooled, torch.Tensor):
        raise TypeError(f"unexpected feature output {type(output).__name__}")
    return pooled


class TorchSession:
    def __init__(self, model: Any, device: str = "cpu", dtype: torch.dtype | None = None) -> None:
        self.device = torch.device(device)
        self.dtype = dtype
        self.model = model.to(self.device, dtype=dtype) if dtype else model.to(self.device)
        self.model.eval()

    def _tensors(self, inputs: Inputs) -> dict[str, torch.Tensor]:
        tensors = {}
        for key, value in inputs.items():
            tensor = torch.from_numpy(np.ascontiguousarray(value)).to(self.device)
            if self.dtype is not None and tensor.is_floating_point():
                tensor = tensor.to(self.dtype)
            tensors[key] = tensor
        return tensors

    def encode_images(self, inputs: Inputs) -> NDArray[np.float32]:
        with torch.inference_mode():
            output = self.model.get_image_features(**self._tensors(inputs))
        return features_tensor(output).float().cpu().numpy()

    def encode_texts(self, inputs: Inputs) -> NDArray[np.float32]:
        with torch.inference_mode():
            output = self.model.get_text_features(**self._tensors(inputs))
        return features_tensor(output).float().cpu().numpy()
