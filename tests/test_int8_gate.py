"""The automatic int8 precision is proven per model: outliers that break it fall back to fp32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pixseek.collection import open_collection
from pixseek.demo.factory import ClipShape, build_clip
from pixseek.ingest import FolderSource, ingest
from pixseek.models import EmbedderOptions, load_embedder
from pixseek.models.hf_clip.quality import MIN_COSINE, Quality
from tests.conftest import make_image

SHAPE = ClipShape(
    hidden=64,
    intermediate=128,
    vision_hidden=64,
    vision_intermediate=128,
    vision_layers=3,
    image_size=64,
    patch_size=8,
    projection_dim=32,
)


def with_outliers(
    directory: Path, scale: float = 50.0, channels: int = 3, tower: str = "vision_model"
) -> Path:
    """Real ViTs have a few LayerNorm channels tens of times larger than the rest: so here."""
    import torch

    from pixseek.models.hf_clip.loading import load_model

    model = load_model(str(directory))
    with torch.no_grad():
        for layer in getattr(model, tower).encoder.layers:
            for norm in (layer.layer_norm1, layer.layer_norm2):
                norm.weight[:channels] *= scale
                norm.bias[:channels] *= scale
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("gate")
    clean = build_clip(root / "clean", SHAPE)
    outliers = with_outliers(build_clip(root / "outliers", SHAPE))
    text_outliers = with_outliers(build_clip(root / "text-outliers", SHAPE), tower="text_model")
    return {
        "clean": clean.resolve(),
        "outliers": outliers.resolve(),
        "text-outliers": text_outliers.resolve(),
    }


def auto(model: Path) -> EmbedderOptions:
    return EmbedderOptions(model=str(model), runtime="onnx", precision="auto", device="cpu")


def test_a_clean_model_keeps_int8(models) -> None:
    """Both towers pass their checks: text queries run in int8 too, close to fp32."""
    embedder = load_embedder(auto(models["clean"]))
    assert embedder.precision == "int8"  # type: ignore[attr-defined]
    assert "checked against fp32" in embedder.precision_note  # type: ignore[attr-defined]
    assert "text tower int8 too" in embedder.precision_note  # type: ignore[attr-defined]
    exact = load_embedder(
        EmbedderOptions(model=str(models["clean"]), runtime="onnx", precision="fp32")
    )
    prompts = ["a red circle", "two blue squares", "a dark picture"]
    text_int8, text_fp32 = embedder.embed_texts(prompts), exact.embed_texts(prompts)
    assert not np.allclose(text_int8, text_fp32, atol=1e-6)  # really the int8 tower
    assert np.sum(text_int8 * text_fp32, axis=1).min() >= MIN_COSINE


def test_a_text_tower_that_fails_its_check_stays_fp32(models) -> None:
    """Outliers in the text tower alone: images stay int8, text queries fp32."""
    embedder = load_embedder(auto(models["text-outliers"]))
    assert embedder.precision == "int8"  # type: ignore[attr-defined]
    assert "text tower fp32" in embedder.precision_note  # type: ignore[attr-defined]
    exact = load_embedder(
        EmbedderOptions(model=str(models["text-outliers"]), runtime="onnx", precision="fp32")
    )
    prompts = ["a red circle", "two blue squares"]
    assert np.allclose(embedder.embed_texts(prompts), exact.embed_texts(prompts), atol=1e-5)


def test_outliers_fail_the_check_and_fall_back_to_fp32(models) -> None:
    embedder = load_embedder(auto(models["outliers"]))
    assert embedder.precision == "fp32"  # type: ignore[attr-defined]
    assert "int8 rejected" in embedder.precision_note  # type: ignore[attr-defined]
    from pixseek.models.hf_clip.onnx_build import export_dir

    quality = Quality.load(export_dir(str(models["outliers"]), "int8"))
    assert quality is not None and not quality.passed and quality.mean_cosine < MIN_COSINE
    # the fallback really is fp32: the same vectors as the fp32 export
    exact = load_embedder(
        EmbedderOptions(model=str(models["outliers"]), runtime="onnx", precision="fp32")
    )
    images = [np.random.default_rng(i).integers(0, 255, (50, 60, 3), np.uint8) for i in range(3)]
    from PIL import Image

    pictures = [Image.fromarray(a) for a in images]
    assert np.allclose(embedder.embed_images(pictures), exact.embed_images(pictures), atol=1e-5)
    # asked for explicitly, int8 is what the user gets, with the measurement to read
    forced = load_embedder(
        EmbedderOptions(model=str(models["outliers"]), runtime="onnx", precision="int8")
    )
    assert forced.precision == "int8" and "rejected" in forced.precision_note  # type: ignore[attr-defined]


def test_info_says_why(models, tmp_path) -> None:
    folder = tmp_path / "photos"
    for i in range(3):
        make_image(folder / f"{i}.png", (40 * i, 100, 200))
    collection = open_collection(tmp_path / "c", auto(models["outliers"]), create=True)
    ingest(collection, FolderSource([folder]))
    info = open_collection(tmp_path / "c").info()
    assert info.precision == "fp32" and "int8 rejected" in info.precision_note
    assert info.runtime == "onnx"


def test_a_new_collection_checks_int8_on_its_own_images(tmp_path, capsys) -> None:
    from pixseek.cli.main import main

    model = build_clip(tmp_path / "model", SHAPE)
    folder = tmp_path / "photos"
    for i in range(20):
        make_image(folder / f"{i:02d}.png", (12 * i, 255 - 12 * i, 90), size=(80, 60))
    args = ["index", str(folder), "--collection", str(tmp_path / "c"), "--model", str(model)]
    assert main([*args, "--runtime", "onnx", "--quiet"]) == 0
    assert main(["info", "--collection", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "runtime:    onnx (int8)" in out and "on 20 of your images" in out


def test_an_image_alone_scores_as_in_a_batch_or_int8_is_rejected(models) -> None:
    """Dynamic int8 takes one activation scale for a whole batch, so an image's vector
    moves with its batch mates; a query is embedded alone. The check measures it (a clean
    model barely moves; outliers move it far) and rejects int8 where it moves more than
    int8 may differ from fp32, even where the two agree in a batch."""
    from dataclasses import replace

    from pixseek.models.hf_clip.onnx_build import export_dir

    clean = Quality.load(export_dir(str(models["clean"]), "int8"))
    outliers = Quality.load(export_dir(str(models["outliers"]), "int8"))
    assert clean is not None and outliers is not None
    assert clean.alone_cosine >= MIN_COSINE > outliers.alone_cosine
    moved = replace(clean, alone_cosine=MIN_COSINE - 0.001)
    assert clean.passed and not moved.passed
    assert "int8 rejected" in moved.note() and "alone against in a batch" in moved.note()
