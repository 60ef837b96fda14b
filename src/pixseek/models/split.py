"""An embedder whose image and text towers come from different checkpoints.

The text tower must have been trained into the image tower's space (for example
a multilingual text encoder distilled from CLIP's); only their dimensions can be
checked here, so a mismatch is refused and alignment is the checkpoint's promise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from numpy.typing import NDArray
from PIL import Image

from pixseek.core.errors import WrongModelError
from pixseek.core.vectors import Vectors
from pixseek.models.base import Capabilities, Embedder, PreparedImageEmbedder

TEXT_SEPARATOR = " + text:"


def split_name(image_model: str, text_model: str) -> str:
    return f"{image_model}{TEXT_SEPARATOR}{text_model}" if text_model else image_model


class TextEncoder(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed_texts(self, texts: Sequence[str]) -> Vectors: ...


class SplitTowerEmbedder:
    """Images through ``image``, texts through ``text``; both into one space."""

    def __init__(self, image: Embedder, text: TextEncoder) -> None:
        if image.dim != text.dim:
            raise WrongModelError(
                f"text model {text.name!r} gives {text.dim}-d vectors but image model "
                f"{image.name!r} gives {image.dim}-d ones: they cannot share one space"
            )
        self.image = image
        self.text = text
        self.runtime = getattr(image, "runtime", "auto")
        self.precision = getattr(image, "precision", "auto")
        self.precision_note = getattr(image, "precision_note", "")

    @property
    def name(self) -> str:
        return split_name(self.image.name, self.text.name)

    @property
    def dim(self) -> int:
        return self.image.dim

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(image=True, text=True, input_size=self.image.capabilities.input_size)

    def embed_images(self, images: Sequence[Image.Image]) -> Vectors:
        return self.image.embed_images(images)

    def embed_texts(self, texts: Sequence[str]) -> Vectors:
        return self.text.embed_texts(texts)

    def prepare_image(self, image: Image.Image) -> Any:
        if isinstance(self.image, PreparedImageEmbedder):
            return self.image.prepare_image(image)
        return image

    def embed_prepared(self, items: Sequence[dict[str, NDArray[Any]]]) -> Vectors:
        if isinstance(self.image, PreparedImageEmbedder):
            return self.image.embed_prepared(items)
        return self.image.embed_images(items)  # type: ignore[arg-type]
