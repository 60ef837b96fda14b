"""Builds a :class:`ClipEmbedder` that runs the transformers model in eager torch."""

from __future__ import annotations

from pixseek.core.errors import UnknownBackendError
from pixseek.models.hf_clip.embedder import ClipEmbedder
from pixseek.models.hf_clip.loading import embedding_dim, load_model, load_processor
from pixseek.models.hf_clip.policy import TextPolicy
from pixseek.models.options import EmbedderOptions


def build_torch_embedder(options: EmbedderOptions) -> ClipEmbedder:
    import torch

    from pixseek.models.runtimes.torch_session import TorchSession

    dtypes = {"fp32": None, "fp16": torch.float16}
    if options.precision not in dtypes:
        raise UnknownBackendError(
            f"the torch runtime supports fp32 and fp16, not {options.precision!r} "
            "(use --runtime onnx for int8)"
        )
    processor = load_processor(options.model)
    model = load_model(options.model)
    session = TorchSession(model, options.device, dtypes[options.precision])
    return ClipEmbedder(
        name=options.model,
        dim=embedding_dim(model.config),
        processor=processor,
        session=session,
        text_policy=TextPolicy.for_config(model.config, processor.tokenizer),
        batch_size=options.batch_size,
        runtime="torch",
        precision=options.precision,
    )
