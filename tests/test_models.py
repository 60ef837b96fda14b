from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPModel, CLIPProcessor

from pixseek.core.errors import EmptyQueryError, ModelLoadError, UnknownBackendError
from pixseek.imaging.crops import crop_box
from pixseek.imaging.decode import load_image_file
from pixseek.models import EmbedderOptions, load_embedder

TEXTS = [
    "a photo of a dog",
    "taxis",
    "cars waiting for pedestrians to cross the street",
    "a red circle on the left",
    "pizza",
]


def reference(model_dir: Path, images: list[Image.Image], texts: list[str]):  # type: ignore[no-untyped-def]
    model = CLIPModel.from_pretrained(model_dir).eval()
    processor = CLIPProcessor.from_pretrained(model_dir)
    with torch.no_grad():
        pixels = processor(images=images, return_tensors="pt")["pixel_values"]
        image = model.get_image_features(pixel_values=pixels).pooler_output
        tokens = processor(text=texts, return_tensors="pt", padding=True)
        text = model.get_text_features(
            input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
        ).pooler_output
    normalize = torch.nn.functional.normalize
    return normalize(image, dim=-1).numpy(), normalize(text, dim=-1).numpy()


def test_parity_with_transformers_on_real_photos(tiny_model, torch_embedder, coco_images) -> None:
    images = [load_image_file(path) for path in coco_images[:6]]
    ref_images, ref_texts = reference(tiny_model, images, TEXTS)
    ours_images = torch_embedder.embed_images(images)
    ours_texts = torch_embedder.embed_texts(TEXTS)
    assert ours_images.dtype == np.float32 and ours_texts.dtype == np.float32
    assert np.abs(ours_images - ref_images).max() <= 1e-4
    assert np.abs(ours_texts - ref_texts).max() <= 1e-4
    assert np.allclose(np.linalg.norm(ours_images, axis=1), 1.0, atol=1e-5)


def test_parity_on_object_crop(tiny_model, torch_embedder, coco_images) -> None:
    image = load_image_file(coco_images[0])
    crop = crop_box(image, (10.0, 20.0, image.width / 3, image.height / 2), margin=0.1)
    ref_images, _ = reference(tiny_model, [crop], TEXTS[:1])
    assert np.abs(torch_embedder.embed_images([crop]) - ref_images).max() <= 1e-4


def test_batches_give_the_same_vectors_as_one_call(tiny_model) -> None:
    small = load_embedder(EmbedderOptions(model=str(tiny_model), runtime="torch", batch_size=2))
    texts = TEXTS * 2
    one_by_one = np.concatenate([small.embed_texts([text]) for text in texts])
    assert np.abs(small.embed_texts(texts) - one_by_one).max() <= 1e-5


def test_offline_hub_id_gives_a_clear_error(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="--model /path/to/dir"):
        load_embedder(EmbedderOptions(model="openai/clip-vit-base-patch32", runtime="torch"))


def test_missing_directory_and_non_model_directory(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_embedder(EmbedderOptions(model=str(tmp_path / "nope"), runtime="torch"))
    with pytest.raises(ModelLoadError, match="not a loadable model directory"):
        load_embedder(EmbedderOptions(model=str(tmp_path), runtime="torch"))


def test_unknown_runtime_and_precision(tiny_model) -> None:
    with pytest.raises(UnknownBackendError, match="runtime 'tensorflow'"):
        load_embedder(EmbedderOptions(model=str(tiny_model), runtime="tensorflow"))
    with pytest.raises(UnknownBackendError, match="int8"):
        load_embedder(EmbedderOptions(model=str(tiny_model), runtime="torch", precision="int8"))


def test_empty_text_is_rejected(torch_embedder) -> None:
    with pytest.raises(EmptyQueryError):
        torch_embedder.embed_texts(["dog", "  "])


def test_name_is_the_absolute_model_directory(tiny_model, torch_embedder, monkeypatch) -> None:
    monkeypatch.chdir(tiny_model.parent)
    relative = load_embedder(EmbedderOptions(model=tiny_model.name, runtime="torch"))
    assert relative.name == torch_embedder.name == str(tiny_model.resolve())
    assert relative.dim == 16


def test_two_threads_load_models_at_once(tiny_model) -> None:
    """A fresh process (transformers not imported yet) loading two models on two threads, as
    a server does when it warms one collection while another's first search arrives."""
    import subprocess
    import sys

    code = f"""
import threading
from pixseek.models import EmbedderOptions, load_embedder
errors = []
def load(runtime):
    try:
        load_embedder(EmbedderOptions(model={str(tiny_model)!r}, runtime=runtime))
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=load, args=(r,)) for r in ("torch", "torch", "onnx")]
[t.start() for t in threads]
[t.join() for t in threads]
print(errors)
"""
    for _ in range(2):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.strip() == "[]", result.stdout
