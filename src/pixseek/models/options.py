"""What to load: one value naming a model, its runtime, precision and device."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
PRECISIONS = ("auto", "fp32", "fp16", "int8")
OPTION_NAMES = ("model", "runtime", "precision", "device", "batch_size", "text_model", "family")


@dataclass(frozen=True, slots=True)
class EmbedderOptions:
    """Everything needed to build an embedder; one value instead of many keywords.

    ``family`` picks the model logic (``auto``: ``hf-clip``, or the index's own), ``runtime``
    what executes it (``auto``: onnxruntime on CPU, torch on GPU), ``precision``
    its number format (``auto``: int8 on CPU when it passes the quality check).
    """

    model: str = ""  # empty: the collection's own model, or DEFAULT_MODEL for a new one
    runtime: str = "auto"
    precision: str = "auto"
    device: str = "auto"
    batch_size: int = 32
    cache_dir: Path | None = None
    family: str = "auto"
    # the automatic precision uses int8 only if it passes the quality check against fp32;
    # calibration: the user's images to check it on (else generated ones)
    gate_int8: bool = False
    calibration: tuple[Path, ...] = ()
    # a separate text tower (sentence-transformers checkpoint) aligned to the image tower
    text_model: str = ""

    def with_model(self, model: str) -> EmbedderOptions:
        return replace(self, model=model)

    @classmethod
    def from_attrs(cls, source: object) -> EmbedderOptions:
        """Options from any object with these attribute names (CLI args, server settings)."""
        defaults = cls()
        values = {name: getattr(source, name, getattr(defaults, name)) for name in OPTION_NAMES}
        return cls(**values)


def canonical_model_name(name_or_path: str) -> str:
    """Hub ids stay as given; local directories become absolute paths, so a collection
    remembers the same model whichever working directory it is opened from."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return str(path.resolve())
    return name_or_path
