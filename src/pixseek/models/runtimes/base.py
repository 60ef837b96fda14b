"""The contract between model logic (pre/post-processing) and the runtime that executes it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from pixseek.core.errors import DeviceError

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


DEVICES = ("auto", "cuda", "mps", "cpu")  # cuda:N names one GPU


def select_device(requested: str | None = None, runtime: str = "auto") -> str:
    """``cuda`` > ``mps`` > ``cpu`` unless the caller names one; an unknown name, or a
    device this machine (or, for ``runtime="onnx"``, onnxruntime) does not have, is a
    :class:`DeviceError` before any model loads, not a traceback from inside torch.

    For onnxruntime the answer comes from its own providers, so a CLI search
    on the ONNX runtime never imports torch.
    """
    name = (requested or "auto").strip().lower()
    kind, colon, number = name.partition(":")
    if kind not in DEVICES or (colon and not (kind == "cuda" and number.isdigit())):
        raise DeviceError(
            f"unknown device {requested!r}: choose from {', '.join(DEVICES)} (cuda:N for one GPU)"
        )
    if runtime == "onnx":
        return _onnx_device(name, requested)
    if name == "auto":
        return _best_torch_device()
    if kind != "cpu":
        _check_torch_device(kind, int(number or 0), requested)
    return name


def _onnx_device(name: str, requested: str | None) -> str:
    import onnxruntime as ort

    cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if name == "auto":
        return "cuda" if cuda else "cpu"
    if name.startswith("mps") or (name.startswith("cuda") and not cuda):
        raise DeviceError(
            f"device {requested!r} is not available to the ONNX runtime here (it runs on "
            f"{'cpu and cuda' if cuda else 'the cpu only'}; onnxruntime-gpu adds cuda): use "
            "cpu, auto, or --runtime torch"
        )
    return name


def _best_torch_device() -> str:
    if cpu_only_torch():
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def _check_torch_device(kind: str, number: int, requested: str | None) -> None:
    if cpu_only_torch():
        raise DeviceError(
            f"device {requested!r} is not available: this torch is a CPU-only build; use "
            "cpu or auto"
        )
    import torch

    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count <= number:
            built = f"CUDA {torch.version.cuda}" if torch.version.cuda else "no CUDA"
            raise DeviceError(
                f"device {requested!r} is not available: torch sees {count} CUDA GPU(s) on "
                f"this machine (torch {torch.__version__}, built with {built}); use cpu or auto"
            )
        return
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available():
        raise DeviceError(
            f"device {requested!r} is not available: torch sees no Apple GPU (MPS) on this "
            "machine; use cpu or auto"
        )
