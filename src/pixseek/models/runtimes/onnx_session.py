"""onnxruntime execution of exported image and text towers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pixseek.models.runtimes.base import Inputs


def providers_for(device: str) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device.startswith("cuda") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxSession:
    def __init__(self, image_model: Path, text_model: Path, device: str = "cpu") -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = os.cpu_count() or 1
        providers = providers_for(device)
        self._image = ort.InferenceSession(str(image_model), options, providers=providers)
        self._text = ort.InferenceSession(str(text_model), options, providers=providers)
        self._image_inputs = {i.name for i in self._image.get_inputs()}
        self._text_inputs = {i.name for i in self._text.get_inputs()}

    def encode_images(self, inputs: Inputs) -> NDArray[np.float32]:
        feed = {
            k: np.asarray(v, dtype=np.float32) for k, v in inputs.items() if k in self._image_inputs
        }
        return np.asarray(self._image.run(None, feed)[0], dtype=np.float32)

    def encode_texts(self, inputs: Inputs) -> NDArray[np.float32]:
        feed = {
            k: np.asarray(v, dtype=np.int64) for k, v in inputs.items() if k in self._text_inputs
        }
        return np.asarray(self._text.run(None, feed)[0], dtype=np.float32)
