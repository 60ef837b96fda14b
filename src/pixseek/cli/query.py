"""``pixseek search``, ``similar`` and ``embed``: read a collection or a model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pixseek.cli.args import add_model, add_query, embedder_options, parse_box, read_image_arg


def register(commands: Any) -> None:
    search = commands.add_parser(
        "search",
        help="search by text",
        description="Each argument is one query term: quote a phrase to search for it as a "
        "whole. '+dog' and '0.5*cat' weight a term, '-grass' pushes results away, "
        "'id:ID' uses an indexed image or object.",
    )
    search.add_argument("terms", nargs="*", help="'a red car', '+dog', '-grass', 'id:ID'")
    search.add_argument(
        "--more-like", action="append", default=[], metavar="ID", help="relevant result id"
    )
    search.add_argument(
        "--less-like", action="append", default=[], metavar="ID", help="irrelevant result id"
    )
    search.add_argument(
        "--remember",
        action="store_true",
        help="store the --more-like/--less-like marks as judgements of this query",
    )
    add_query(search)
    search.set_defaults(handler=run_search)

    similar = commands.add_parser("similar", help="search by an image file or an indexed id")
    similar.add_argument("image", nargs="?", type=Path, help="an image file")
    similar.add_argument("--id", dest="record_id", help="an indexed image or object")
    similar.add_argument(
        "--box", type=parse_box, metavar="X,Y,W,H", help="pixels: search by this region"
    )
    add_query(similar)
    similar.set_defaults(handler=run_similar)

    embed = commands.add_parser("embed", help="print the vector of a text or an image as JSON")
    inputs = embed.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--text", help="a text")
    inputs.add_argument("--image", type=Path, help="an image file")
    embed.add_argument("--box", type=parse_box, metavar="X,Y,W,H", help="embed this region")
    embed.add_argument("--json", action="store_true", help="(the output is always JSON)")
    add_model(embed, required=True)
    embed.set_defaults(handler=run_embed)


def search_options(args: argparse.Namespace, collection: Any = None) -> Any:
    from pixseek.core.filters import Filter
    from pixseek.core.query import Feedback, SearchOptions

    feedback = Feedback(
        tuple(getattr(args, "more_like", ())), tuple(getattr(args, "less_like", ()))
    )
    return SearchOptions(
        k=args.k,
        kind=args.kind,
        where=Filter.parse(args.where),
        min_score=args.min_score,
        feedback=feedback,
        index=_index(args, collection),
    )


def _index(args: argparse.Namespace, collection: Any) -> str:
    """--index by name, or --model naming one of the collection's models."""
    if args.index or collection is None or not args.model:
        return str(args.index)
    return str(collection.index(args.model).name)


def _print_hits(args: argparse.Namespace, hits: Any) -> int:
    from pixseek.cli.render import hits_json, hits_table

    print(hits_json(hits) if args.json else hits_table(hits))
    return 0


def run_search(args: argparse.Namespace) -> int:
    from pixseek.collection import open_collection
    from pixseek.core.errors import EmptyQueryError
    from pixseek.core.query import parse_term
    from pixseek.search import search

    terms = [parse_term(token) for token in args.terms]
    if not terms and not args.more_like:
        raise EmptyQueryError("give a text to search for, e.g. pixseek search 'a red car'")
    collection = open_collection(args.collection, embedder_options(args))
    options = search_options(args, collection)
    hits = search(collection, terms, options)
    if args.remember:
        from pixseek.search.remember import remember

        stored = remember(collection, terms, options.feedback, "cli", options.index)
        print(f"pixseek: stored {len(stored)} judgements", file=sys.stderr)
    return _print_hits(args, hits)


def run_similar(args: argparse.Namespace) -> int:
    from pixseek.collection import open_collection
    from pixseek.core.errors import InvalidInputError
    from pixseek.core.query import ImageQuery, RecordQuery, RegionQuery, Term
    from pixseek.search import search

    if (args.image is None) == (args.record_id is None):
        raise InvalidInputError("give either an IMAGE_FILE or --id ID")
    collection = open_collection(args.collection, embedder_options(args))
    options = search_options(args, collection)
    term: Term
    if args.record_id is not None and args.box is not None:
        record = collection.get(args.record_id)
        _warn_if_clipped(record.width, record.height, args.box)
        term = Term(RegionQuery(args.record_id, args.box))
    elif args.record_id is not None:
        term = Term(RecordQuery(args.record_id))
    else:
        data = read_image_arg(args.image)
        if args.box is not None:
            from pixseek.imaging.decode import decode_image_sized

            width, height = decode_image_sized(data)[1]  # upright, as the query is cropped
            _warn_if_clipped(width, height, args.box)
        term = Term(ImageQuery(data, args.box))
    return _print_hits(args, search(collection, [term], options))


def _warn_if_clipped(width: int, height: int, box: tuple[float, float, float, float]) -> None:
    from pixseek.imaging.crops import clip_box

    clipped, moved = clip_box(box, width, height)
    if moved:
        shown = ",".join(f"{v:g}" for v in clipped)
        print(f"pixseek: note: the box was clipped to the image: {shown}", file=sys.stderr)


def run_embed(args: argparse.Namespace) -> int:
    from pixseek.core.errors import InvalidInputError
    from pixseek.imaging.crops import crop_box, validate_box
    from pixseek.imaging.decode import load_image_file
    from pixseek.models import load_embedder

    if args.text is not None and args.box is not None:
        raise InvalidInputError("--box crops an --image; a --text has none")
    embedder = load_embedder(embedder_options(args))
    if args.text is not None:
        vector = embedder.embed_texts([args.text])[0]
    else:
        image = load_image_file(args.image)
        if args.box is not None:
            _warn_if_clipped(image.width, image.height, args.box)
            image = crop_box(image, validate_box(args.box, image.width, image.height), 0.0)
        vector = embedder.embed_images([image])[0]
    print(json.dumps({"model": embedder.name, "vector": [float(v) for v in vector]}))
    return 0
