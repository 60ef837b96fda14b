"""SigLIP-family checkpoints load through the same call (AutoModel / AutoProcessor)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

from pixseek.demo.factory import train_tokenizer
from pixseek.models import EmbedderOptions, load_embedder


def test_tiny_siglip_matches_transformers(tmp_path) -> None:
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
