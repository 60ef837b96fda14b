"""The contract between model logic (pre/post-processing) and the runtime that executes it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

Inputs = Mapping[str, NDArray[np.generic]]


class TowerSession(Protocol):
    """Runs the image and text towers on already-preprocessed numpy inputs."""

    def encode_images(self, inputs: Inputs) -> NDArray[np.float32]: ...

    def encode_texts(self, inputs: Inputs) -> NDArray[np.float32]: ...


def cpu_only_torch() -> bool:
    """PyTorch's CPU-only wheels carry a ``+cpu`` local version (``2.13.0+cpu``): no CUDA
    and no MPS there, known without importing torch, which costs a new collection's
    ``pixseek index`` nearly a second."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch").endswith("+cpu")
    except PackageNotFoundError:
        return False


def select_device(requested: str | None = None, runtime: str = "auto") -> str:
    """``cuda`` > ``mps`` > ``cpu`` unless the caller names one.

    For onnxruntime the answer comes from its own providers, so a CLI search
    on the ONNX runtime never imports torch.
    """
    if requested and requested != "auto":
        return requested
    if runtime == "onnx":
        import onnxruntime as ort

        return "cuda" if "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"
    if cpu_only_torch():
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"
