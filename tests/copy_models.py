"""Two classical copy descriptors for tests: models that see through copy edits, which
random-weight CLIPs do not, with very different similarity scales."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageOps

from pixseek.models import BatchEmbedder
from pixseek.models.base import IMAGE_ONLY


def thumbnail(image: Image.Image, side: int = 16) -> np.ndarray:
    """A centred grayscale thumbnail, made mirror-symmetric so that flips look the same."""
    gray = np.asarray(ImageOps.grayscale(image).resize((side, side), Image.Resampling.BOX))
    values = gray.astype(np.float32)
    values = values + values[:, ::-1]
    values -= values.mean()
    return values.reshape(-1)


class ThumbnailDescriptor(BatchEmbedder):
    """Cosines of unrelated photos spread around 0, copies near 1."""

    def __init__(self) -> None:
        super().__init__("thumbnail-descriptor", 16 * 16, batch_size=64, capabilities=IMAGE_ONLY)

    def embed_image_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        rows = [thumbnail(image) for image in images]
        return np.stack([row / (np.linalg.norm(row) + 1e-6) for row in rows])


class CompressedDescriptor(BatchEmbedder):
    """The same descriptor beside a large constant part: every cosine is pushed towards 1
    (unrelated photos near 0.8, copies near 0.99), as some real models' scales are."""

    def __init__(self) -> None:
        super().__init__(
            "compressed-descriptor", 16 * 16 + 1, batch_size=64, capabilities=IMAGE_ONLY
        )

    def embed_image_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        rows = [thumbnail(image) for image in images]
        unit = [row / (np.linalg.norm(row) + 1e-6) for row in rows]
        return np.stack([np.append(row, 2.0) for row in unit])
