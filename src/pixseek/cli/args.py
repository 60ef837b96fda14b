"""Argument types and option groups shared by several commands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

PRECISIONS = ("auto", "fp32", "fp16", "int8")  # checked against the library's list in tests


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``X,Y,W,H``; negative numbers are fine (a box may start left of the image)."""
    from pixseek.core.errors import InvalidBoxError

    try:
        values = [float(value) for value in text.split(",")]
    except ValueError as exc:
        raise InvalidBoxError(f"--box takes X,Y,W,H numbers, got {text!r}") from exc
    if len(values) != 4:
        raise InvalidBoxError(f"--box takes four numbers X,Y,W,H, got {text!r}")
    return (values[0], values[1], values[2], values[3])


def add_collection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--collection", required=True, type=Path, metavar="DIR", help="collection directory"
    )


def add_model(parser: argparse.ArgumentParser, required: bool = False) -> None:
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        required=required,
        default="",
        help="hub id or local directory"
        if required
        else "hub id or local directory (default: the collection's model; for a new "
        "collection openai/clip-vit-base-patch32, downloaded on first use)",
    )
    group.add_argument(
        "--family",
        default="auto",
        help="model family (see `pixseek models --available`; default: the collection's, "
        "or hf-clip for transformers CLIP-family checkpoints)",
    )
    group.add_argument(
        "--runtime", default="auto", help="torch | onnx | auto (onnx on CPU, torch on GPU)"
    )
    group.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="auto: int8 ONNX on CPU when it passes the accuracy check, fp16 on GPU",
    )
    group.add_argument(
        "--text-model",
        default="",
        help="a separate text tower aligned to the model's image space (a sentence-transformers "
        "checkpoint, e.g. sentence-transformers/clip-ViT-B-32-multilingual-v1)",
    )
    group.add_argument("--device", default="auto", help="cuda | mps | cpu | auto")
    group.add_argument("--batch-size", type=positive_int, default=32, help="images per model call")


def add_query(parser: argparse.ArgumentParser) -> None:
    add_collection(parser)
    parser.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    kinds = parser.add_mutually_exclusive_group()
    kinds.add_argument(
        "--objects", dest="kind", action="store_const", const="object", help="objects only"
    )
    kinds.add_argument(
        "--images", dest="kind", action="store_const", const="image", help="whole images only"
    )
    parser.add_argument(
        "--where",
        help='filter, e.g. "label=dog,cat and split!=train", "label in (a, b) or tags=x" '
        "(fields: kind, label, split, source, image_id, tags, path, id, content_hash, outcome)",
    )
    parser.add_argument(
        "--min-score",
        type=score_or_auto,
        help='drop hits below this cosine similarity; "auto": below the index\'s calibrated '
        "cutoff (queries by image: what unrelated images reach; text queries: measured on "
        "the collection's labels, see `pixseek info`)",
    )
    parser.add_argument(
        "--index", default="", help="the collection's index to search (see `pixseek models`)"
    )
    parser.add_argument("--json", action="store_true", help="print hits as JSON")
    add_model(parser)


def embedder_options(args: argparse.Namespace) -> Any:
    from pixseek.models.options import EmbedderOptions

    return EmbedderOptions.from_attrs(args)


def read_image_arg(path: Path) -> bytes:
    """An image file named on the command line, checked before it is read whole (the
    decoding module is imported only when one is read: commands start faster)."""
    from pixseek.imaging.decode import read_image_file

    return read_image_file(path)


def positive_int(text: str) -> int:
    """A count of at least 1 (a batch size, threads): 0 or less would be ignored."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def score_or_auto(text: str) -> float | str:
    """A number, or ``auto`` for the index's calibrated cutoff."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number or "auto"') from None
