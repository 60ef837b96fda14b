"""pixseek.models.hf_clip.pixels: CLIP preprocessing without transformers gives exactly
transformers' pixels, and is only used for configs it reads completely."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pixseek.models.hf_clip.pixels import ClipPixels

OPENAI_STYLE = {  # openai/clip-vit-base-patch32's preprocessor_config.json, at a smaller side
    "crop_size": 32,
    "do_center_crop": True,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor",
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "size": 32,
}
CONFIGS: dict[str, dict[str, Any]] = {
    "openai": OPENAI_STYLE,
    "dict sizes": {
        **OPENAI_STYLE,
        "feature_extractor_type": None,
        "image_processor_type": "CLIPImageProcessor",
        "size": {"shortest_edge": 40},
        "crop_size": {"height": 36, "width": 28},
    },
    "fixed size, no crop": {
        "image_processor_type": "CLIPImageProcessor",
        "size": {"height": 30, "width": 50},
        "do_center_crop": False,
        "resample": 2,
    },
    "crop wider than the image": {**OPENAI_STYLE, "size": 16, "crop_size": 24},
    "no rescale": {**OPENAI_STYLE, "do_rescale": False},
    "no normalise": {**OPENAI_STYLE, "do_normalize": False},
    "defaults": {"image_processor_type": "CLIPImageProcessor"},
}


def pictures() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (479, 641, 3), dtype=np.uint8)
    rgb = Image.fromarray(noise)
    palette = rgb.quantize(16)
    palette.info["transparency"] = 3
    return [
        rgb,
        rgb.crop((0, 0, 100, 333)),  # portrait
        rgb.crop((0, 0, 5, 3)),  # smaller than every side
        rgb.crop((0, 0, 1, 200)),  # one pixel wide
        rgb.convert("L"),
        Image.fromarray(rng.integers(0, 256, (57, 91, 4), dtype=np.uint8), "RGBA"),
        palette,
    ]


def transformers_processor(config: dict[str, Any]) -> Any:
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    keys = {k: v for k, v in config.items() if not k.endswith("_type") and v is not None}
    return CLIPImageProcessorPil(**keys)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_pixels_are_transformers_pixels(name: str) -> None:
    config = {k: v for k, v in CONFIGS[name].items() if v is not None}
    ours = ClipPixels.from_config(config)
    assert ours is not None
    theirs = transformers_processor(config)
    for image in pictures():
        expected = theirs(images=[image], return_tensors="np")["pixel_values"]
        got = ours(images=[image], return_tensors="np")["pixel_values"]
        assert got.dtype == expected.dtype and got.shape == expected.shape, (image, got.shape)
        assert np.array_equal(got, expected), (name, image)
    assert dict(ours.size) == dict(theirs.size)


@pytest.mark.parametrize(
    "change",
    [
        {"image_processor_type": "SiglipImageProcessor", "feature_extractor_type": None},
        {"do_pad": True},  # a key it does not do
        {"size": {"shortest_edge": 32, "longest_edge": 64}},
        {"crop_size": {"shortest_edge": 32}},
        {"resample": "bicubic"},
        {"image_mean": [0.5]},
        {"do_resize": "yes"},
    ],
)
def test_a_config_it_cannot_read_completely_is_left_to_transformers(
    change: dict[str, Any],
) -> None:
    config = {k: v for k, v in {**OPENAI_STYLE, **change}.items() if v is not None}
    assert ClipPixels.from_config(config) is None


def test_it_reads_either_config_file_but_not_both(tmp_path: Path) -> None:
    flat, nested, both = tmp_path / "flat", tmp_path / "nested", tmp_path / "both"
    for folder in (flat, nested, both):
        folder.mkdir()
    for folder in (flat, both):
        (folder / "preprocessor_config.json").write_text(json.dumps(OPENAI_STYLE))
    for folder in (nested, both):
        (folder / "processor_config.json").write_text(json.dumps({"image_processor": OPENAI_STYLE}))
    assert ClipPixels.load(str(flat)) is not None
    assert ClipPixels.load(str(nested)) is not None
    assert ClipPixels.load(str(both)) is None
    assert ClipPixels.load(str(tmp_path / "missing")) is None


def test_real_photos_at_clip_size(coco_images: list[Path]) -> None:
    ours = ClipPixels.from_config({"image_processor_type": "CLIPImageProcessor"})
    assert ours is not None
    theirs = transformers_processor({})
    photos = [Image.open(path) for path in coco_images[:20]]
    expected = theirs(images=photos, return_tensors="np")["pixel_values"]
    assert np.array_equal(ours(images=photos)["pixel_values"], expected)
