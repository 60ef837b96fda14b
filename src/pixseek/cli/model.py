"""``pixseek train`` and ``pixseek evaluate``: fine-tune and measure a model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pixseek.cli.args import add_collection, add_model, embedder_options


def register(commands: Any) -> None:
    train = commands.add_parser("train", help="fine-tune the model on the collection's data")
    add_collection(train)
    train.add_argument("--out", required=True, type=Path, help="directory for the new model")
    train.add_argument(
        "--from", dest="base", default="", help="start model (default: the collection's)"
    )
    _truth(train)
    train.add_argument(
        "--mode",
        choices=["full", "lit", "projection"],
        default="full",
        help="train everything, lock the text tower (lit), or only the projections",
    )
    train.add_argument("--epochs", type=int, default=10, help="at most this many epochs")
    train.add_argument("--batch-size", type=int, default=64, help="pairs per step")
    train.add_argument("--lr", type=float, default=5e-4, help="peak learning rate")
    train.add_argument("--val-fraction", type=float, default=0.1, help="share of images held out")
    train.add_argument("--patience", type=int, default=3, help="epochs without improvement")
    train.add_argument("--seed", type=int, default=0, help="random seed")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(handler=run_train)

    evaluate = commands.add_parser("evaluate", help="retrieval recall and zero-shot accuracy")
    add_collection(evaluate)
    _truth(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print as JSON")
    add_model(evaluate)
    evaluate.set_defaults(handler=run_evaluate)


def _truth(parser: argparse.ArgumentParser) -> None:
    truth = parser.add_mutually_exclusive_group(required=True)
    truth.add_argument("--labels", action="store_true", help="prompts from image labels")
    truth.add_argument("--captions", type=Path, help="csv, jsonl or COCO captions json")
    parser.add_argument(
        "--template", action="append", help="label prompt, e.g. 'a photo of a {label}'"
    )


def _pairs(args: argparse.Namespace, collection: Any) -> Any:
    from pixseek.training import pairs_from_captions, pairs_from_labels
    from pixseek.training.data import DEFAULT_TEMPLATES

    if args.captions is not None:
        return pairs_from_captions(collection, args.captions)
    return pairs_from_labels(collection, tuple(args.template or DEFAULT_TEMPLATES))


def run_train(args: argparse.Namespace) -> int:
    from pixseek.cli.render import TrainBar, train_text
    from pixseek.collection import open_collection
    from pixseek.training import TrainOptions, train

    collection = open_collection(args.collection)
    options = TrainOptions(
        mode=args.mode,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        val_fraction=args.val_fraction,
        patience=args.patience,
        seed=args.seed,
    )
    progress = None if args.quiet else TrainBar()
    pairs = _pairs(args, collection)
    report = train(args.base or collection.model, pairs, args.out, options, progress)
    if progress is not None:
        progress.close()
    print(train_text(report))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from pixseek.cli.render import eval_json, eval_text
    from pixseek.collection import open_collection
    from pixseek.jobs.evaluate import evaluate
    from pixseek.models import load_embedder

    collection = open_collection(args.collection)
    embedder = load_embedder(embedder_options(args)) if args.model else None
    report = evaluate(
        collection.index(),
        _pairs(args, collection),
        embedder=embedder,
        zero_shot=bool(args.labels),
        templates=tuple(args.template or ("a photo of a {label}",)),
    )
    print(eval_json(report) if args.json else eval_text(report))
    return 0
