"""Export a transformers CLIP-family model to ONNX once, and quantise it.

Exports are cached by model (and a fingerprint of its weights) and precision:
beside the model for a writable local directory (not the models shipped inside
pixseek itself), otherwise in the user cache
(``PIXSEEK_CACHE_DIR`` or ``~/.cache/pixseek``). Each export is written to a
temporary directory and renamed into place, so an interrupted export is never
mistaken for a finished one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pixseek.core.errors import ModelLoadError, UnknownBackendError
from pixseek.models.hf_clip.embedder import ClipEmbedder
from pixseek.models.hf_clip.light import FastTokenizer, LazyProcessor, text_config
from pixseek.models.hf_clip.loading import embedding_dim, load_processor, pretrained_kwargs
from pixseek.models.hf_clip.policy import TextPolicy
from pixseek.models.hf_clip.quality import Quality, measure
from pixseek.models.options import EmbedderOptions

ONNX_PRECISIONS = ("fp32", "int8", "fp16")
OPSET = 17
RECIPE = "r4"  # bump when the export or quantisation recipe changes


def _fingerprint(model: str) -> str:
    """Changes when a local model's weights change, so a retrained model re-exports."""
    parts = [model]
    directory = Path(model)
    if directory.is_dir():
        for path in sorted(directory.glob("*")):
            if path.suffix in {".safetensors", ".bin", ".json"}:
                stat = path.stat()
                parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()


def export_dir(model: str, precision: str, cache_dir: Path | None = None) -> Path:
    key = f"{_fingerprint(model)}-{precision}-{RECIPE}"
    local = Path(model).resolve()
    inside_package = local.is_relative_to(Path(__file__).resolve().parents[1])
    if cache_dir is None and local.is_dir() and os.access(local, os.W_OK) and not inside_package:
        return local / ".pixseek-onnx" / key
    base = cache_dir or Path(os.environ.get("PIXSEEK_CACHE_DIR", "~/.cache/pixseek")).expanduser()
    return base / "onnx" / key


def _tower(model: Any, method: str, names: tuple[str, ...]) -> Any:
    """A module whose forward is one of the model's ``get_*_features`` (what we export)."""
    import torch

    from pixseek.models.runtimes.torch_session import features_tensor

    class Tower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            features = getattr(self.model, method)(**dict(zip(names, inputs, strict=True)))
            return features_tensor(features)

    return Tower()


def _export_fp32(model_name: str, processor: Any, out: Path) -> None:
    import torch
    from transformers import AutoModel

    try:
        model = AutoModel.from_pretrained(
            model_name, attn_implementation="eager", **pretrained_kwargs(model_name)
        ).eval()
    except Exception as exc:
        raise ModelLoadError(f"cannot load {model_name!r} for ONNX export: {exc}") from exc
    size = processor.image_processor.crop_size or processor.image_processor.size
    height = int(size.get("height") or size.get("shortest_edge"))
    width = int(size.get("width") or height)
    pixels = torch.zeros(2, 3, height, width)
    tokens = processor.tokenizer(["a photo", "two words here"], padding=True, return_tensors="pt")
    text_inputs = TextPolicy.for_config(model.config, processor.tokenizer).keys
    with torch.inference_mode(), _quiet():
        torch.onnx.export(
            _tower(model, "get_image_features", ("pixel_values",)),
            (pixels,),
            str(out / "image.onnx"),
            input_names=["pixel_values"],
            output_names=["embeds"],
            dynamic_axes={"pixel_values": {0: "batch"}, "embeds": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
        torch.onnx.export(
            _tower(model, "get_text_features", text_inputs),
            tuple(tokens[name] for name in text_inputs),
            str(out / "text.onnx"),
            input_names=list(text_inputs),
            output_names=["embeds"],
            dynamic_axes={
                **{name: {0: "batch", 1: "length"} for name in text_inputs},
                "embeds": {0: "batch"},
            },
            opset_version=OPSET,
            dynamo=False,
        )


@contextmanager
def _quiet() -> Iterator[None]:
    """Exporters warn through ``warnings`` and the root logger; none of it is actionable."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def _convert(fp32: Path, out: Path, precision: str) -> None:
    with _quiet():
        _convert_towers(fp32, out, precision)


def _convert_towers(fp32: Path, out: Path, precision: str) -> None:
    for tower in ("image", "text"):
        source, target = fp32 / f"{tower}.onnx", out / f"{tower}.onnx"
        if precision == "int8" and tower == "text":
            # fp32 until the int8 candidate passes its own check (see ensure_export)
            shutil.copyfile(source, target)
            target = text_candidate(out)
        if precision == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            # MatMuls only (a quantised patch Conv is slower than fp32 here); reduce_range
            # avoids int16 saturation in AVX2 u8s8 kernels and is faster on them too.
            quantize_dynamic(
                source,
                target,
                weight_type=QuantType.QInt8,
                per_channel=True,
                reduce_range=True,
                op_types_to_quantize=["MatMul"],
            )
        else:
            import onnx
            from onnxruntime.transformers.float16 import convert_float_to_float16

            half = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
            onnx.save(half, str(target))


def text_candidate(directory: Path) -> Path:
    return directory / "text.int8.onnx"


def ensure_export(
    model: str,
    precision: str,
    processor: Any,
    cache_dir: Path | None,
    policy: TextPolicy | None = None,
    calibration: Sequence[Path] = (),
) -> Path:
    """The directory holding ``image.onnx`` and ``text.onnx``, exporting if needed.

    An int8 export is measured against fp32 as it is made (see :mod:`.quality`);
    the result is kept beside it in ``quality.json``.
    """
    final = export_dir(model, precision, cache_dir)
    if (final / "image.onnx").is_file() and (final / "text.onnx").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=final.parent, prefix=".export-"))
    try:
        if precision == "fp32":
            _export_fp32(model, processor, work)
        else:
            fp32 = ensure_export(model, "fp32", processor, cache_dir)
            _convert(fp32, work, precision)
            candidate = text_candidate(work)
            if precision == "int8" and policy is not None:
                quality = measure(fp32, work, processor, policy, calibration, candidate)
                quality.save(work)
                if quality.text_passed:
                    os.replace(candidate, work / "text.onnx")
            candidate.unlink(missing_ok=True)
        try:
            os.replace(work, final)
        except OSError:
            if not (final / "image.onnx").is_file():  # not a concurrent export that won
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def build_onnx_embedder(options: EmbedderOptions) -> ClipEmbedder:
    from pixseek.models.runtimes.onnx_session import OnnxSession

    if options.precision not in ONNX_PRECISIONS:
        raise UnknownBackendError(
            f"the onnx runtime supports {', '.join(ONNX_PRECISIONS)}, not {options.precision!r}"
        )
    parts = _light_parts(options) or _full_parts(options)
    directory, processor, dim, policy = parts
    precision, note = options.precision, ""
    if precision == "int8":
        quality = Quality.load(directory)
        note = quality.note() if quality else ""
        if options.gate_int8 and quality is not None and not quality.passed:
            precision = "fp32"
            directory = export_dir(options.model, "fp32", options.cache_dir)
    session = OnnxSession(directory / "image.onnx", directory / "text.onnx", options.device)
    embedder = ClipEmbedder(
        name=options.model,
        dim=dim,
        processor=processor,
        session=session,
        text_policy=policy,
        batch_size=options.batch_size,
        runtime="onnx",
        precision=precision,
    )
    embedder.precision_note = note
    return embedder


Parts = tuple[Path, Any, int, TextPolicy]


def _light_parts(options: EmbedderOptions) -> Parts | None:
    """An existing export, ``tokenizer.json`` and a complete config: no transformers needed."""
    directory = export_dir(options.model, options.precision, options.cache_dir)
    if not ((directory / "image.onnx").is_file() and (directory / "text.onnx").is_file()):
        return None
    config = text_config(options.model)
    tokenizer = FastTokenizer.load(options.model)
    if config is None or tokenizer is None:
        return None
    policy = TextPolicy.for_values(
        config.model_type, config.max_positions, tokenizer.model_max_length
    )
    return directory, LazyProcessor(options.model, tokenizer), config.dim, policy


def _full_parts(options: EmbedderOptions) -> Parts:
    from transformers import AutoConfig

    processor = load_processor(options.model)
    config = AutoConfig.from_pretrained(options.model, **pretrained_kwargs(options.model))
    policy = TextPolicy.for_config(config, processor.tokenizer)
    directory = ensure_export(
        options.model, options.precision, processor, options.cache_dir, policy, options.calibration
    )
    return directory, processor, embedding_dim(config), policy
