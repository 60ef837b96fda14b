"""The ``pixseek`` command: a thin face over the library; the only code that prints."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pixseek.errors import InvalidBoxError, InvalidInputError, PixseekError
from pixseek.models.registry import PRECISIONS

SEARCH_VALUE_FLAGS = {
    "--collection",
    "-k",
    "--where",
    "--min-score",
    "--more-like",
    "--less-like",
    "--model",
    "--runtime",
    "--precision",
    "--device",
}


def parse_box(text: str) -> tuple[float, float, float, float]:
    try:
        values = [float(value) for value in text.split(",")]
    except ValueError as exc:
        raise InvalidBoxError(f"--box takes X,Y,W,H numbers, got {text!r}") from exc
    if len(values) != 4:
        raise InvalidBoxError(f"--box takes four numbers X,Y,W,H, got {text!r}")
    return (values[0], values[1], values[2], values[3])


def _model_args(parser: argparse.ArgumentParser, required: bool = False) -> None:
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        required=required,
        default="",
        help="hub id or local directory (default: the collection's model)",
    )
    group.add_argument("--runtime", default="auto", help="torch | onnx | auto")
    group.add_argument("--precision", default="auto", choices=PRECISIONS)
    group.add_argument("--device", default="auto", help="cuda | mps | cpu | auto")
    group.add_argument("--batch-size", type=int, default=32, help="images per model call")


def _query_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--collection", required=True, type=Path)
    parser.add_argument("-k", type=int, default=10, help="number of results")
    kinds = parser.add_mutually_exclusive_group()
    kinds.add_argument("--objects", dest="kind", action="store_const", const="object")
    kinds.add_argument("--images", dest="kind", action="store_const", const="image")
    parser.add_argument("--where", help="filter, e.g. 'label=dog,cat and split=val'")
    parser.add_argument("--min-score", type=float)
    parser.add_argument("--json", action="store_true", help="print hits as JSON")
    _model_args(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pixseek", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    index = commands.add_parser("index", help="index images from folders or a COCO file")
    index.add_argument("paths", nargs="+", type=Path, help="folders or files")
    index.add_argument("--collection", required=True, type=Path)
    index.add_argument("--coco", type=Path, help="COCO instances json; PATH is its image folder")
    index.add_argument("--label-from-folder", action="store_true")
    index.add_argument("--crop-margin", type=float, help="context around object crops (0.1)")
    index.add_argument("--workers", type=int, default=2, help="decode threads")
    index.add_argument("--sync", action="store_true", help="drop indexed files now missing")
    index.add_argument(
        "--exact-decode", action="store_true", help="decode JPEGs at full size (slower)"
    )
    index.add_argument("--quiet", action="store_true", help="no progress bar")
    _model_args(index)

    search = commands.add_parser("search", help="search by text (+term, -term, id:ID)")
    search.add_argument("terms", nargs="*", help="'dog', '+dog', '-grass', '0.5*cat', 'id:ID'")
    search.add_argument("--more-like", action="append", default=[], metavar="ID")
    search.add_argument("--less-like", action="append", default=[], metavar="ID")
    _query_args(search)

    similar = commands.add_parser("similar", help="search by an image file or an indexed id")
    similar.add_argument("image", nargs="?", type=Path)
    similar.add_argument("--id", dest="record_id")
    similar.add_argument("--box", type=parse_box, help="X,Y,W,H in pixels: an object query")
    _query_args(similar)

    embed = commands.add_parser("embed", help="print the vector of a text or an image")
    inputs = embed.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--text")
    inputs.add_argument("--image", type=Path)
    embed.add_argument("--box", type=parse_box)
    embed.add_argument("--json", action="store_true", help="(the output is always JSON)")
    _model_args(embed, required=True)

    export = commands.add_parser("export", help="write records and vectors to Parquet")
    export.add_argument("out", type=Path)
    export.add_argument("--collection", required=True, type=Path)

    info = commands.add_parser("info", help="model, counts and failures of a collection")
    info.add_argument("--collection", required=True, type=Path)
    info.add_argument("--json", action="store_true")

    train = commands.add_parser("train", help="fine-tune the model on the collection's data")
    train.add_argument("--collection", required=True, type=Path)
    train.add_argument("--out", required=True, type=Path, help="directory for the new model")
    train.add_argument(
        "--from", dest="base", default="", help="start model (default: the collection's)"
    )
    pairs = train.add_mutually_exclusive_group(required=True)
    pairs.add_argument("--labels", action="store_true", help="prompts from image labels")
    pairs.add_argument("--captions", type=Path, help="csv, jsonl or COCO captions json")
    train.add_argument(
        "--template", action="append", help="label prompt, e.g. 'a photo of a {label}'"
    )
    train.add_argument("--mode", choices=["full", "lit", "projection"], default="full")
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--lr", type=float, default=5e-4)
    train.add_argument("--val-fraction", type=float, default=0.1)
    train.add_argument("--patience", type=int, default=3, help="epochs without improvement")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--quiet", action="store_true")

    evaluate = commands.add_parser("evaluate", help="retrieval recall and zero-shot accuracy")
    evaluate.add_argument("--collection", required=True, type=Path)
    truth = evaluate.add_mutually_exclusive_group(required=True)
    truth.add_argument("--labels", action="store_true")
    truth.add_argument("--captions", type=Path)
    evaluate.add_argument("--template", action="append")
    evaluate.add_argument("--json", action="store_true")
    _model_args(evaluate)

    demo = commands.add_parser("demo", help="a synthetic collection and model, offline")
    demo.add_argument("--dir", type=Path, default=Path("pixseek-demo"))
    demo.add_argument("--images", type=int, default=400)
    demo.add_argument("--serve", action="store_true", help="then open the web UI on it")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument(
        "--train", action="store_true", help="train a new model instead of the shipped one"
    )

    serve = commands.add_parser("serve", help="HTTP API and web UI for the collections in DIR")
    serve.add_argument("--root", required=True, type=Path, help="directory of collections")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--api-key", help="require 'Authorization: Bearer KEY' on the API")
    _model_args(serve)

    remove = commands.add_parser("remove", help="remove images (and their objects) by id")
    remove.add_argument("ids", nargs="+")
    remove.add_argument("--collection", required=True, type=Path)
    return parser


def split_negative_terms(argv: list[str]) -> tuple[list[str], list[str]]:
    """Pull ``-grass``-style terms out of ``search`` arguments before argparse sees them."""
    if not argv or argv[0] != "search":
        return argv, []
    kept, negatives = [argv[0]], []
    previous = ""
    for token in argv[1:]:
        flag = token.split("=", 1)[0]
        is_option = flag in SEARCH_VALUE_FLAGS or flag.startswith("--") or token[:2] == "-k"
        if (
            token.startswith("-")
            and len(token) > 1
            and not is_option
            and token != "--"
            and (previous not in SEARCH_VALUE_FLAGS)
        ):
            negatives.append(token)
        else:
            kept.append(token)
        previous = token
    return kept, negatives


def run(argv: Sequence[str]) -> int:
    argv, negatives = split_negative_terms(list(argv))
    args = build_parser().parse_args(argv)
    if negatives:
        args.terms = [*args.terms, *negatives]
    from pixseek import commands

    handler = getattr(commands, "cmd_" + args.command)
    output: str = handler(args)
    if output:
        print(output)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except PixseekError as exc:
        kind = "invalid input" if isinstance(exc, InvalidInputError) else "error"
        print(f"pixseek: {kind}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pixseek: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
