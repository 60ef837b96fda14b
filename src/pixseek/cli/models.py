"""``pixseek models``, ``reindex`` and ``drop-model``: several models in one collection."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pixseek.cli.args import add_collection, add_model, embedder_options, positive_int


def register(commands: Any) -> None:
    models = commands.add_parser(
        "models",
        help="the collection's indexes: model, size, state (--available: the model families)",
    )
    models.add_argument("--collection", type=Path, metavar="DIR", help="collection directory")
    models.add_argument(
        "--available",
        action="store_true",
        help="list the model families and runtimes installed (FAMILY:RUNTIME), plugins included",
    )
    models.add_argument(
        "--evaluate",
        action="store_true",
        help="rank every index on held-out judgements (and --labels/--captions), with its "
        "dimension and images/s",
    )
    truth = models.add_mutually_exclusive_group()
    truth.add_argument("--labels", action="store_true", help="also measure on label prompts")
    truth.add_argument("--captions", type=Path, help="also measure on these captions")
    models.add_argument(
        "--candidates",
        default="",
        metavar="M1,M2",
        help="with --evaluate: also models not indexed yet, on a sample (needs labels/captions)",
    )
    models.add_argument(
        "--sample",
        type=positive_int,
        default=200,
        help="with --candidates: images every row is measured on (200)",
    )
    models.add_argument("--runtime", default="auto", help="runtime of --candidates models")
    models.add_argument("--json", action="store_true", help="print as JSON")
    models.set_defaults(handler=run_models, template=None)

    reindex = commands.add_parser(
        "reindex",
        help="embed the collection with another model, beside the active one",
        description="Builds the new model's vectors while searches keep using the active "
        "model. Interrupted, it resumes where it stopped. --activate switches searches to "
        "the new model once it is complete; the old one stays until drop-model.",
    )
    add_collection(reindex)
    reindex.add_argument("--name", default="", help="name of the new index (from the model)")
    reindex.add_argument(
        "--activate", action="store_true", help="make it the active index when complete"
    )
    reindex.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model(reindex, required=True)
    reindex.set_defaults(handler=run_reindex)

    drop = commands.add_parser("drop-model", help="delete an index that is not the active one")
    add_collection(drop)
    drop.add_argument("--model", required=True, help="the index's name or model")
    drop.set_defaults(handler=run_drop)


def run_models(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from pixseek.collection import open_collection

    if args.available:
        from pixseek.models.registry import available

        names = available()
        print(json.dumps(names) if args.json else "\n".join(names))
        return 0
    if args.collection is None:
        from pixseek.core.errors import InvalidInputError

        raise InvalidInputError("give --collection DIR (or --available for the model families)")
    collection = open_collection(args.collection)
    if args.evaluate:
        return _evaluate(args, collection)
    info = collection.info(failure_limit=0)
    if args.json:
        rows = [asdict(i) | {"active": i.name == collection.default_index} for i in info.indexes]
        print(json.dumps(rows, indent=2))
        return 0
    for index in info.indexes:
        mark = "*" if index.name == collection.default_index else " "
        print(
            f"{mark} {index.name}: {index.model} ({index.family}, {index.dim}-d, {index.runtime} "
            f"{index.precision}), {index.records} records, {index.state}"
        )
    return 0


def run_reindex(args: argparse.Namespace) -> int:
    from pixseek.cli.ingest import print_new_calibrations
    from pixseek.cli.render import TqdmProgress, report_text
    from pixseek.collection import open_collection
    from pixseek.jobs.reindex import reindex
    from pixseek.models import load_embedder
    from pixseek.models.registry import family_name

    collection = open_collection(args.collection)
    options = embedder_options(args)
    embedder = load_embedder(options)
    progress = TqdmProgress(enabled=not args.quiet)
    result = reindex(
        collection,
        embedder,
        args.name,
        args.activate,
        progress=progress,
        family=family_name(options),
    )
    print(report_text(result.ingest))
    print_new_calibrations(collection)
    state = "active" if result.activated else "ready; activate it with --activate"
    print(f"index {result.index!r} ({embedder.name}) is {state}")
    return 0


def run_drop(args: argparse.Namespace) -> int:
    from pixseek.collection import open_collection

    name = open_collection(args.collection).drop_index(args.model)
    print(f"dropped index {name!r} and its vectors")
    return 0


def _evaluate(args: argparse.Namespace, collection: Any) -> int:
    import json

    from pixseek.cli.model import _pairs
    from pixseek.cli.render import ranking_text
    from pixseek.jobs.compare import rank, ranking_dict
    from pixseek.models import EmbedderOptions, load_embedder

    names = [m.strip() for m in args.candidates.split(",") if m.strip()]
    candidates = [
        load_embedder(EmbedderOptions(model=name, runtime=args.runtime)) for name in names
    ]
    scores = rank(
        collection,
        _pairs(args, collection, held_out=True),
        zero_shot=bool(args.labels),
        candidates=candidates,
        sample=args.sample,
    )
    active = collection.default_index
    print(
        json.dumps(ranking_dict(scores, active), indent=2)
        if args.json
        else ranking_text(scores, active)
    )
    return 0
