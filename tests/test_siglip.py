"""SigLIP-family checkpoints load through the same call (AutoModel / AutoProcessor)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

from pixseek.demo.factory import train_tokenizer
from pixseek.models import EmbedderOptions, load_embedder


def build_siglip(tmp_path):  # type: ignore[no-untyped-def]
    tokenizer = train_tokenizer(["a photo of a cat", "a dog"], max_length=16)
    config = SiglipConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
    )
    torch.manual_seed(0)
    model = SiglipModel(config).eval()
    processor = SiglipProcessor(
        image_processor=SiglipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer
    )
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    return model, processor


def test_tiny_siglip_matches_transformers(tmp_path) -> None:
    model, processor = build_siglip(tmp_path)
    embedder = load_embedder(EmbedderOptions(model=str(tmp_path), runtime="torch"))
    assert embedder.dim == 32
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), np.uint8))
    texts = ["a photo of a cat", "a dog"]
    with torch.no_grad():
        pixels = processor(images=[image], return_tensors="pt")["pixel_values"]
        ref_image = model.get_image_features(pixel_values=pixels)
        tokens = processor(text=texts, padding="max_length", max_length=16, return_tensors="pt")
        ref_text = model.get_text_features(input_ids=tokens["input_ids"])
    pooled = [getattr(r, "pooler_output", r) for r in (ref_image, ref_text)]
    ref_image, ref_text = (torch.nn.functional.normalize(p, dim=-1).numpy() for p in pooled)
    assert np.abs(embedder.embed_images([image]) - ref_image).max() <= 1e-4
    assert np.abs(embedder.embed_texts(texts) - ref_text).max() <= 1e-4
    onnx = load_embedder(EmbedderOptions(model=str(tmp_path), runtime="onnx", precision="fp32"))
    assert np.abs(onnx.embed_texts(texts) - ref_text).max() <= 1e-4
    assert np.abs(onnx.embed_images([image]) - ref_image).max() <= 1e-4


def test_training_tokenises_as_inference_does(tmp_path) -> None:
    """SigLIP reads max-length padding with no mask: training must feed it the same."""
    from pixseek.models.hf_clip.policy import TextPolicy
    from pixseek.training.data import Pair
    from pixseek.training.loop import PairTensors

    model, processor = build_siglip(tmp_path / "model")
    image = tmp_path / "a.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(image)
    texts = ["a dog", "a photo of a cat"]
    pairs = [Pair("a", str(image), texts[0]), Pair("a", str(image), texts[1])]
    policy = TextPolicy.for_config(model.config, processor.tokenizer)
    tensors = PairTensors(processor, pairs, policy)
    assert set(tensors.tokens) == {"input_ids"}
    assert tensors.tokens["input_ids"].shape == (2, policy.max_length)
    embedder = load_embedder(EmbedderOptions(model=str(tmp_path / "model"), runtime="torch"))
    inference = embedder.tokenize(texts)  # type: ignore[attr-defined]
    assert set(inference) == set(tensors.tokens)
    assert np.array_equal(inference["input_ids"], tensors.tokens["input_ids"].numpy())
