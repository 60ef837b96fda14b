"""onnxruntime execution of exported image and text towers."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

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

        self._options = ort.SessionOptions()
        self._options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._options.intra_op_num_threads = os.cpu_count() or 1
        self._providers = providers_for(device)
        self._paths = {"image": image_model, "text": text_model}
        self._sessions: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _session(self, tower: str) -> Any:
        """Each tower's session is created on first use: a text search never loads the
        image tower."""
        if tower not in self._sessions:
            import onnxruntime as ort

            with self._lock:
                if tower not in self._sessions:
                    self._sessions[tower] = ort.InferenceSession(
                        str(self._paths[tower]), self._options, providers=self._providers
                    )
        return self._sessions[tower]

    def _run(self, tower: str, inputs: Inputs, dtype: type) -> NDArray[np.float32]:
        session = self._session(tower)
        names = {i.name for i in session.get_inputs()}
        feed: dict[str, Any] = {
            k: np.asarray(v, dtype=dtype) for k, v in inputs.items() if k in names
        }
        return np.asarray(session.run(None, feed)[0], dtype=np.float32)

    def encode_images(self, inputs: Inputs) -> NDArray[np.float32]:
        return self._run("image", inputs, np.float32)

    def encode_texts(self, inputs: Inputs) -> NDArray[np.float32]:
        return self._run("text", inputs, np.int64)
