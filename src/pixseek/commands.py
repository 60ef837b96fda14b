"""Handlers of the ``pixseek`` subcommands: each parses nothing, calls the library
and returns the text to print."""

from __future__ import annotations

import argparse
import json

from pixseek import cli_format
from pixseek.collection import open_collection
from pixseek.errors import EmptyQueryError, InvalidInputError
from pixseek.export import export_parquet
from pixseek.imaging import crop_box, load_image_file, validate_box
from pixseek.ingest import CocoSource, FolderSource, IngestOptions, ingest
from pixseek.ingest.sources import Source
from pixseek.models.registry import EmbedderOptions, load_embedder
from pixseek.records import Hit
from pixseek.search import (
    Feedback,
    ImageQuery,
    RecordQuery,
    RegionQuery,
    SearchOptions,
    Term,
    parse_term,
)
from pixseek.search import search as run_search
from pixseek.store.filters import Filter


def embedder_options(args: argparse.Namespace) -> EmbedderOptions:
    return EmbedderOptions(
        model=args.model,
        runtime=args.runtime,
        precision=args.precision,
        device=args.device,
        batch_size=args.batch_size,
    )


def _search_options(args: argparse.Namespace) -> SearchOptions:
    feedback = Feedback(
        tuple(getattr(args, "more_like", ())), tuple(getattr(args, "less_like", ()))
    )
    return SearchOptions(
        k=args.k,
        kind=args.kind,
        where=Filter.parse(args.where),
        min_score=args.min_score,
        feedback=feedback,
    )


def _hits(args: argparse.Namespace, hits: list[Hit]) -> str:
    return cli_format.hits_json(hits) if args.json else cli_format.hits_table(hits)


def cmd_index(args: argparse.Namespace) -> str:
    source: Source
    if args.coco:
        if len(args.paths) != 1 or not args.paths[0].is_dir():
            raise InvalidInputError("with --coco, give exactly one PATH: the images' folder")
        if args.sync:
            raise InvalidInputError("--sync applies to folders, not to --coco imports")
        source = CocoSource(args.coco, args.paths[0])
    else:
        source = FolderSource(tuple(args.paths), label_from_folder=args.label_from_folder)
    collection = open_collection(
        args.collection, embedder_options(args), create=True, crop_margin=args.crop_margin
    )
    options = IngestOptions(
        batch_size=max(args.batch_size, 1),
        workers=args.workers,
        sync=args.sync,
        fast_decode=not args.exact_decode,
    )
    progress = cli_format.TqdmProgress(enabled=not args.quiet)
    report = ingest(collection, source, options, progress)
    return cli_format.report_text(report)


def cmd_search(args: argparse.Namespace) -> str:
    terms = [parse_term(token) for token in args.terms]
    if not terms and not args.more_like:
        raise EmptyQueryError("give a text to search for, e.g. pixseek search 'a red car'")
    collection = open_collection(args.collection, embedder_options(args))
    return _hits(args, run_search(collection, terms, _search_options(args)))


def cmd_similar(args: argparse.Namespace) -> str:
    if (args.image is None) == (args.record_id is None):
        raise InvalidInputError("give either an IMAGE_FILE or --id ID")
    collection = open_collection(args.collection, embedder_options(args))
    term: Term
    if args.record_id is not None and args.box is not None:
        term = Term(RegionQuery(args.record_id, args.box))
    elif args.record_id is not None:
        term = Term(RecordQuery(args.record_id))
    else:
        term = Term(ImageQuery(_read(args.image), args.box))
    return _hits(args, run_search(collection, [term], _search_options(args)))


def _read(path: object) -> bytes:
    from pathlib import Path

    from pixseek.errors import ImageDecodeError

    try:
        return Path(str(path)).read_bytes()
    except OSError as exc:
        raise ImageDecodeError(f"cannot read {path}: {exc.strerror or exc}") from exc


def cmd_embed(args: argparse.Namespace) -> str:
    embedder = load_embedder(embedder_options(args))
    if args.text is not None:
        vector = embedder.embed_texts([args.text])[0]
    else:
        image = load_image_file(args.image)
        if args.box is not None:
            image = crop_box(image, validate_box(args.box, image.width, image.height), 0.0)
        vector = embedder.embed_images([image])[0]
    return json.dumps({"model": embedder.name, "vector": [float(v) for v in vector]})


def cmd_export(args: argparse.Namespace) -> str:
    collection = open_collection(args.collection)
    count = export_parquet(collection, args.out)
    return f"wrote {count} records to {args.out}"


def cmd_info(args: argparse.Namespace) -> str:
    info = open_collection(args.collection).info()
    return cli_format.info_json(info) if args.json else cli_format.info_text(info)


def cmd_remove(args: argparse.Namespace) -> str:
    removed = open_collection(args.collection).remove(list(args.ids))
    missing = len(set(args.ids)) - removed
    suffix = f" ({missing} ids were not images of this collection)" if missing else ""
    return f"removed {removed} images and their objects{suffix}"


def cmd_serve(args: argparse.Namespace) -> str:
    import uvicorn

    from pixseek.api import ServeSettings, create_app

    settings = ServeSettings(
        root=args.root,
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        model=args.model,
        runtime=args.runtime,
        precision=args.precision,
        device=args.device,
    )
    print(f"pixseek: serving {args.root} on http://{args.host}:{args.port}/", flush=True)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")
    return ""


def _pairs(args: argparse.Namespace, collection):  # type: ignore[no-untyped-def]
    from pixseek.training import pairs_from_captions, pairs_from_labels
    from pixseek.training.data import DEFAULT_TEMPLATES

    if args.captions is not None:
        return pairs_from_captions(collection, args.captions)
    return pairs_from_labels(collection, tuple(args.template or DEFAULT_TEMPLATES))


def cmd_train(args: argparse.Namespace) -> str:
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
    progress = None if args.quiet else cli_format.TrainBar()
    report = train(
        args.base or collection.model, _pairs(args, collection), args.out, options, progress
    )
    if progress is not None:
        progress.close()
    return cli_format.train_text(report)


def cmd_evaluate(args: argparse.Namespace) -> str:
    from pixseek.training import evaluate

    collection = open_collection(args.collection)
    embedder = load_embedder(embedder_options(args)) if args.model else None
    pairs = _pairs(args, collection)
    report = evaluate(
        collection,
        pairs,
        embedder=embedder,
        zero_shot=bool(args.labels),
        templates=tuple(args.template or ("a photo of a {label}",)),
    )
    return cli_format.eval_json(report) if args.json else cli_format.eval_text(report)


def cmd_demo(args: argparse.Namespace) -> str:
    from pixseek.demo import DemoOptions, build_demo, example_searches

    demo = build_demo(
        DemoOptions(args.dir, args.images, train=args.train),
        progress=cli_format.TrainBar() if args.train else None,
    )
    lines = [
        f"demo collection: {demo.collection.root} ({demo.collection.count()} records)",
        f"model: {demo.model}",
        "",
    ]
    for query, hits in example_searches(demo):
        lines.append(f'search "{query}":')
        lines += [
            f"  {hit.score:.3f}  {demo.captions.get(hit.path, hit.label or '')}" for hit in hits
        ]
    example = "a small white square on the top"
    lines.append(f"\ntry: pixseek search '{example}' --collection {demo.collection.root}")
    if not args.serve:
        return "\n".join(lines)
    print("\n".join(lines), flush=True)
    args.root, args.host, args.api_key = demo.collection.root.parent, "127.0.0.1", None
    args.model, args.runtime, args.precision, args.device = "", "auto", "auto", "auto"
    return cmd_serve(args)
