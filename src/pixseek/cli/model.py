"""``pixseek train`` and ``pixseek evaluate``: fine-tune and measure a model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pixseek.cli.args import add_collection, add_model, embedder_options, positive_int


def register(commands: Any) -> None:
    train = commands.add_parser("train", help="fine-tune the model on the collection's data")
    add_collection(train)
    train.add_argument("--out", required=True, type=Path, help="directory for the new model")
    train.add_argument(
        "--from", dest="base", default="", help="start model (default: the collection's)"
    )
    _truth(train, required=False)
    train.add_argument(
        "--from-feedback",
        action="store_true",
        help="train on the stored judgements (relevant: pairs, irrelevant: hard negatives), "
        "except those held out for evaluate --compare; alone or with --labels/--captions",
    )
    train.add_argument(
        "--mode",
        choices=["full", "lit", "projection", "copy"],
        default="full",
        help="train everything, lock the text tower (lit), or only the projections; copy: "
        "train the image tower alone to see edited copies of the collection's images as "
        "their sources (no labels or captions needed)",
    )
    train.add_argument("--epochs", type=positive_int, default=10, help="at most this many epochs")
    train.add_argument(
        "--batch-size",
        type=positive_int,
        default=64,
        help="pairs per step (images with --mode copy)",
    )
    train.add_argument("--lr", type=float, default=5e-4, help="peak learning rate")
    train.add_argument(
        "--val-fraction",
        type=float,
        help="share of images held out to pick the best epoch (0.1; with --from-feedback "
        "alone 0: the last epoch is kept, held-out judgements measure it)",
    )
    train.add_argument("--patience", type=int, default=3, help="epochs without improvement")
    train.add_argument("--seed", type=int, default=0, help="random seed")
    train.add_argument(
        "--device",
        default="auto",
        metavar="auto|cuda|mps|cpu",
        help="where to train (auto: a CUDA GPU when torch sees one, else mps, else the CPU; "
        "cuda:N for one GPU); the model directory is saved the same way on any device",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(handler=run_train)

    evaluate = commands.add_parser(
        "evaluate",
        help="retrieval recall and zero-shot accuracy; --compare: the active index against "
        "another on held-out judgements",
    )
    add_collection(evaluate)
    _truth(evaluate, required=False)
    evaluate.add_argument(
        "--compare",
        action="store_true",
        help="measure the active index against another (--index, default the newest) on "
        "held-out judgements (nDCG@10, recall@K), plus labels or captions when given",
    )
    evaluate.add_argument("--index", default="", help="the index to compare with (--compare)")
    evaluate.add_argument(
        "--activate-if-better",
        action="store_true",
        help="with --compare: make the other index the active one if it scores higher",
    )
    evaluate.add_argument("--json", action="store_true", help="print as JSON")
    add_model(evaluate)
    evaluate.set_defaults(handler=run_evaluate)


def _truth(parser: argparse.ArgumentParser, required: bool = True) -> None:
    truth = parser.add_mutually_exclusive_group(required=required)
    truth.add_argument("--labels", action="store_true", help="prompts from image labels")
    truth.add_argument("--captions", type=Path, help="csv, jsonl or COCO captions json")
    parser.add_argument(
        "--template", action="append", help="label prompt, e.g. 'a photo of a {label}'"
    )


def _pairs(args: argparse.Namespace, collection: Any, held_out: bool) -> Any:
    """The labels' or captions' pairs: of the held-out images (``split=test``) to measure
    with, of the others to train on (all of them where none is held out)."""
    from pixseek.training import pairs_from_captions, pairs_from_labels
    from pixseek.training.data import DEFAULT_TEMPLATES, part_of

    if args.captions is None and not args.labels:
        return []
    if args.captions is not None:
        pairs = pairs_from_captions(collection, args.captions)
    else:
        pairs = pairs_from_labels(collection, tuple(args.template or DEFAULT_TEMPLATES))
    return part_of(collection, pairs, held_out)


def run_train(args: argparse.Namespace) -> int:
    from pixseek.cli.render import TrainBar, train_text
    from pixseek.collection import open_collection
    from pixseek.training import TrainOptions, train
    from pixseek.training.loop import training_device

    training_device(args.device)  # a device this machine lacks fails before any work
    collection = open_collection(args.collection)
    options = TrainOptions(
        mode=args.mode,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        val_fraction=_val_fraction(args),
        patience=args.patience,
        seed=args.seed,
        device=args.device,
    )
    progress = None if args.quiet else TrainBar()
    if args.mode == "copy":
        return _train_copy(args, collection, options, progress)
    pairs, negatives = list(_pairs(args, collection, held_out=False)), None
    if args.from_feedback:
        from pixseek.training.feedback import pairs_from_feedback

        judged = pairs_from_feedback(collection)
        pairs, negatives = pairs + judged.positives, judged.negatives
        print(
            f"judgements: {len(judged.positives)} relevant, {len(judged.negatives)} irrelevant, "
            f"{judged.held_out} held out for evaluation, {judged.skipped} without a text query"
        )
    elif not pairs:
        from pixseek.core.errors import InvalidInputError

        raise InvalidInputError("give --labels, --captions FILE or --from-feedback")
    base = args.base or collection.model
    report = train(base, pairs, args.out, options, progress, negatives=negatives)
    if progress is not None:
        progress.close()
    print(train_text(report))
    return 0


def _train_copy(args: argparse.Namespace, collection: Any, options: Any, progress: Any) -> int:
    from pixseek.cli.render import train_text
    from pixseek.training.copy import images_for_copy, refuse_texts, train_copy

    given = {
        "--labels": args.labels,
        "--captions": args.captions is not None,
        "--from-feedback": args.from_feedback,
    }
    refuse_texts([flag for flag, value in given.items() if value], "--mode copy")
    report = train_copy(
        args.base or collection.model, images_for_copy(collection), args.out, options, progress
    )
    if progress is not None:
        progress.close()
    print(train_text(report))
    return 0


def _val_fraction(args: argparse.Namespace) -> float:
    if args.val_fraction is not None:
        return float(args.val_fraction)
    alone = args.from_feedback and not args.labels and args.captions is None
    return 0.0 if alone else 0.1


def run_evaluate(args: argparse.Namespace) -> int:
    from pixseek.cli.render import eval_json, eval_text
    from pixseek.collection import open_collection
    from pixseek.jobs.evaluate import evaluate
    from pixseek.models import load_embedder

    collection = open_collection(args.collection)
    if args.compare:
        return _compare(args, collection)
    if args.activate_if_better:
        from pixseek.core.errors import InvalidInputError

        raise InvalidInputError("--activate-if-better goes with --compare")
    if not args.labels and args.captions is None:
        from pixseek.core.errors import InvalidInputError

        raise InvalidInputError("give --labels or --captions FILE (or --compare)")
    embedder = load_embedder(embedder_options(args)) if args.model else None
    report = evaluate(
        collection.index(),
        _pairs(args, collection, held_out=True),
        embedder=embedder,
        zero_shot=bool(args.labels),
        templates=tuple(args.template or ("a photo of a {label}",)),
    )
    print(eval_json(report) if args.json else eval_text(report))
    return 0


def _compare(args: argparse.Namespace, collection: Any) -> int:
    import json

    from pixseek.cli.render import compare_text
    from pixseek.jobs.compare import compare

    report = compare(
        collection,
        args.index,
        _pairs(args, collection, held_out=True),
        zero_shot=bool(args.labels),
        activate_if_better=args.activate_if_better,
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else compare_text(report))
    return 0
