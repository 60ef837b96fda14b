"""CLIP's image preprocessing read from the checkpoint's processor config, without
importing transformers.

An image query (``match``, ``similar``, ``classify``) used to spend about four of its five
seconds importing transformers (and torch) just to resize, crop and normalise one image.
This module does the same steps with Pillow and numpy, in the same order and the same
number types as transformers' own PIL backend (``CLIPImageProcessorPil``), so the pixels
are bit-identical (tested against it). It is only built for a config it reads completely:
any key it does not know, or a processor type other than CLIP's, returns ``None`` and the
caller loads transformers' processor, so results never differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pixseek.models.hf_clip.light import read_json

# What transformers' CLIPImageProcessor does when a key is left out.
CLIP_DEFAULTS: dict[str, Any] = {
    "do_resize": True,
    "size": {"shortest_edge": 224},
    "resample": 3,  # bicubic
    "do_center_crop": True,
    "crop_size": {"height": 224, "width": 224},
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "do_convert_rgb": True,
}
CLIP_TYPES = {
    ("image_processor_type", "CLIPImageProcessor"),
    ("feature_extractor_type", "CLIPFeatureExtractor"),
}
NAMING_KEYS = {"image_processor_type", "feature_extractor_type", "processor_class"}
PIL_FILTERS = {0, 1, 2, 3, 4, 5}  # nearest, lanczos, bilinear, bicubic, box, hamming


@dataclass(frozen=True, slots=True)
class Side:
    """A resize target: the shortest edge, or a fixed height and width."""

    shortest_edge: int | None = None
    height: int | None = None
    width: int | None = None

    @classmethod
    def parse(cls, value: object, square: bool) -> Side | None:
        """``size`` as transformers reads it: an int is the shortest edge (or, for the crop,
        a square side); a dict names shortest_edge, or height and width."""
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(height=value, width=value) if square else cls(shortest_edge=value)
        if not isinstance(value, Mapping) or not all(isinstance(v, int) for v in value.values()):
            return None
        if set(value) == {"shortest_edge"}:
            return cls(shortest_edge=value["shortest_edge"])
        if set(value) == {"height", "width"}:
            return cls(height=value["height"], width=value["width"])
        return None

    def as_dict(self) -> dict[str, int]:
        if self.shortest_edge is not None:
            return {"shortest_edge": self.shortest_edge}
        return {"height": int(self.height or 0), "width": int(self.width or 0)}

    def resized(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) after resizing, by transformers' rule (the long side truncated)."""
        if self.shortest_edge is None:
            return int(self.width or 0), int(self.height or 0)
        short, long = (width, height) if width <= height else (height, width)
        new_long = int(self.shortest_edge * long / short)
        if width <= height:
            return self.shortest_edge, new_long
        return new_long, self.shortest_edge


class ClipPixels:
    """Called like a transformers image processor (``images=``, ``return_tensors="np"``);
    ``size`` and ``crop_size`` read as transformers' do."""

    def __init__(self, settings: Mapping[str, Any], size: Side, crop: Side | None) -> None:
        self._settings = settings
        self._size = size
        self._crop = crop
        self.size = size.as_dict()
        self.crop_size = crop.as_dict() if crop is not None else None
        self._mean = np.asarray(settings["image_mean"], dtype=np.float32)
        self._std = np.asarray(settings["image_std"], dtype=np.float32)

    @classmethod
    def load(cls, model: str) -> ClipPixels | None:
        """The checkpoint's CLIP preprocessing, or None when its config says anything this
        class does not do exactly as transformers would."""
        flat = read_json(model, "preprocessor_config.json")
        nested = (read_json(model, "processor_config.json") or {}).get("image_processor")
        if (flat is None) == (nested is None):
            return None  # none, or two that could disagree: let transformers decide
        config = flat if flat is not None else nested
        return cls.from_config(config) if isinstance(config, dict) else None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ClipPixels | None:
        if not any(config.get(key) == value for key, value in CLIP_TYPES):
            return None
        if set(config) - set(CLIP_DEFAULTS) - NAMING_KEYS:
            return None
        settings = {**CLIP_DEFAULTS, **{k: v for k, v in config.items() if k in CLIP_DEFAULTS}}
        size = Side.parse(settings["size"], square=False)
        crop = Side.parse(settings["crop_size"], square=True)
        if size is None or crop is None or crop.shortest_edge is not None:
            return None
        if settings["resample"] not in PIL_FILTERS or not _triple(settings):
            return None
        flags = ("do_resize", "do_center_crop", "do_rescale", "do_normalize", "do_convert_rgb")
        if not all(isinstance(settings[flag], bool) for flag in flags):
            return None
        if not isinstance(settings["rescale_factor"], int | float):
            return None
        return cls(settings, size, crop if settings["do_center_crop"] else None)

    def __call__(
        self, images: Sequence[Image.Image], return_tensors: str = "np"
    ) -> dict[str, NDArray[np.float32]]:
        pixels = [self.one(image) for image in images]
        return {"pixel_values": np.stack(pixels)}

    def one(self, image: Image.Image) -> NDArray[Any]:
        """One image as a channels-first array, step by step as transformers' PIL backend."""
        settings = self._settings
        if settings["do_convert_rgb"]:
            image = _rgb(image)
        if settings["do_resize"]:
            image = image.resize(self._size.resized(*image.size), resample=settings["resample"])
        array = np.array(image)
        if array.ndim == 2:
            array = array[:, :, None]
        pixels: NDArray[Any] = np.moveaxis(array, -1, 0)
        if self._crop is not None:
            pixels = _center_crop(pixels, int(self._crop.height or 0), int(self._crop.width or 0))
        if settings["do_rescale"]:
            pixels = (pixels.astype(np.float64) * settings["rescale_factor"]).astype(np.float32)
        if settings["do_normalize"]:
            if not np.issubdtype(pixels.dtype, np.floating):
                pixels = pixels.astype(np.float32)
            mean, std = self._mean.astype(pixels.dtype), self._std.astype(pixels.dtype)
            pixels = ((pixels.T - mean) / std).T
        return pixels


def _triple(settings: Mapping[str, Any]) -> bool:
    """Mean and std of one number per RGB channel."""
    return all(
        isinstance(values, list)
        and len(values) == 3
        and all(isinstance(v, int | float) for v in values)
        for values in (settings["image_mean"], settings["image_std"])
    )


def _rgb(image: Image.Image) -> Image.Image:
    """RGB, with any transparency composited onto white (transformers' ``convert_to_rgb``)."""
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _center_crop(pixels: NDArray[Any], height: int, width: int) -> NDArray[Any]:
    """The centre ``height`` x ``width``, zero-padded where the image is smaller (with
    transformers' offsets: floor for the crop, ceiling for the padding)."""
    rows, cols = pixels.shape[-2:]
    top, left = (rows - height) // 2, (cols - width) // 2
    if top >= 0 and left >= 0:
        return pixels[..., top : top + height, left : left + width]
    padded_rows, padded_cols = max(height, rows), max(width, cols)
    canvas = np.zeros_like(pixels, shape=(*pixels.shape[:-2], padded_rows, padded_cols))
    pad_top, pad_left = -(-(padded_rows - rows) // 2), -(-(padded_cols - cols) // 2)
    canvas[..., pad_top : pad_top + rows, pad_left : pad_left + cols] = pixels
    top, left = top + pad_top, left + pad_left
    return canvas[
        ...,
        max(0, top) : min(padded_rows, top + height),
        max(0, left) : min(padded_cols, left + width),
    ]
