"""One table of embedder builders keyed by (model family, runtime); unknown names raise.

A family is the model logic (pre/post-processing, tokenisation): ``hf-clip``
covers every transformers CLIP-family checkpoint (CLIP, SigLIP, ...). A runtime
executes it (``torch``, ``onnx``). Third-party builders register through the
``pixseek.embedders`` entry-point group, named ``FAMILY:RUNTIME``; the value is a
factory taking :class:`EmbedderOptions`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from importlib.metadata import entry_points

from pixseek.core.errors import UnknownBackendError
from pixseek.models.base import Embedder
from pixseek.models.options import DEFAULT_MODEL, PRECISIONS, EmbedderOptions, canonical_model_name

EmbedderFactory = Callable[[EmbedderOptions], Embedder]
# one model loads at a time: two threads importing transformers at once can see it half
# initialised (a server warming one collection's model while another's first search loads)
LOADING_LOCK = threading.RLock()
DEFAULT_FAMILY = "hf-clip"  # the same value as collection.manifest's, one layer down
ENTRY_POINT_GROUP = "pixseek.embedders"


def _hf_clip_torch(options: EmbedderOptions) -> Embedder:
    from pixseek.models.hf_clip.torch_build import build_torch_embedder

    return build_torch_embedder(options)


def _hf_clip_onnx(options: EmbedderOptions) -> Embedder:
    from pixseek.models.hf_clip.onnx_build import build_onnx_embedder

    return build_onnx_embedder(options)


_BUILDERS: dict[tuple[str, str], EmbedderFactory] = {
    ("hf-clip", "torch"): _hf_clip_torch,
    ("hf-clip", "onnx"): _hf_clip_onnx,
}


def register_embedder(family: str, runtime: str, factory: EmbedderFactory) -> None:
    _BUILDERS[(family, runtime)] = factory


def _load_plugins() -> None:
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        family, _, runtime = entry.name.partition(":")
        if (family, runtime) not in _BUILDERS:
            _BUILDERS[(family, runtime)] = entry.load()


def available() -> list[str]:
    """``family:runtime`` of every registered builder."""
    _load_plugins()
    return sorted(f"{family}:{runtime}" for family, runtime in _BUILDERS)


def family_name(options: EmbedderOptions) -> str:
    """The family the options pick (``auto``: the CLIP family of transformers)."""
    return DEFAULT_FAMILY if options.family == "auto" else options.family


def runtimes_of(family: str) -> list[str]:
    _load_plugins()
    return sorted(runtime for name, runtime in _BUILDERS if name == family)


def resolve_runtime(options: EmbedderOptions) -> EmbedderOptions:
    """Pick the automatic family, runtime and precision for the device.

    On CPU, onnxruntime with int8 weights is several times faster than eager torch;
    on GPU, torch fp16 is.
    """
    from pixseek.models.runtimes.base import select_device

    device = select_device(options.device, options.runtime)
    runtime, precision = options.runtime, options.precision
    if precision not in PRECISIONS:
        raise UnknownBackendError(f"unknown precision {precision!r}; choose from {PRECISIONS}")
    family = family_name(options)
    if runtime == "auto":
        runtime = "torch" if device != "cpu" else "onnx"
        offered = runtimes_of(family)
        if offered and runtime not in offered:  # a plugin family with a runtime of its own
            runtime = offered[0]
    gate = options.gate_int8
    if precision == "auto":
        precision = "fp16" if device == "cuda" else ("int8" if runtime == "onnx" else "fp32")
        gate = precision == "int8"
    return replace(
        options, runtime=runtime, precision=precision, device=device, family=family, gate_int8=gate
    )


def load_embedder(options: EmbedderOptions | str | None = None) -> Embedder:
    """Build an embedder for a hub id or local directory (see :class:`EmbedderOptions`)."""
    if options is None:
        options = EmbedderOptions()
    elif isinstance(options, str):
        options = EmbedderOptions(model=options)
    model = canonical_model_name(options.model or DEFAULT_MODEL)
    options = resolve_runtime(options.with_model(model))
    key = (options.family, options.runtime)
    if key not in _BUILDERS:
        _load_plugins()
    factory = _BUILDERS.get(key)
    if factory is None:
        raise UnknownBackendError(
            f"no embedder for model family {options.family!r} on runtime "
            f"{options.runtime!r}; available: {', '.join(available())}"
        )
    with LOADING_LOCK:
        embedder = factory(options)
    if not options.text_model:
        return embedder
    from pixseek.models.split import SplitTowerEmbedder
    from pixseek.models.st_text.encoder import SentenceTextEncoder

    text_device = "cpu" if options.device == "mps" else options.device
    text = SentenceTextEncoder(canonical_model_name(options.text_model), text_device)
    return SplitTowerEmbedder(embedder, text)
