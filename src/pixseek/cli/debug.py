"""``pixseek slice``, ``blindspots``, ``label-errors``, ``map`` and ``uniqueness``: where a
model or its data go wrong, measured."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pixseek.cli.args import add_collection, positive_int


def register(commands: Any) -> None:
    slicer = commands.add_parser(
        "slice",
        help="a detector's metrics on the images a search returns, against the whole set",
        description="Needs ground truth and predictions (index --coco GT --predictions PRED). "
        "The slice is the images of a text search, of --similar ID, or of --where.",
    )
    slicer.add_argument("text", nargs="?", help="a text query, e.g. 'taxis at night'")
    add_collection(slicer)
    slicer.add_argument("--similar", metavar="ID", help="images like this image")
    slicer.add_argument("--where", help="images matching a filter, e.g. 'split=val'")
    slicer.add_argument("--top", type=int, default=50, help="slice size for searches (50)")
    slicer.add_argument("--min-score", type=float, help="or: every image at least this similar")
    slicer.add_argument("--json", action="store_true", help="print as JSON")
    slicer.set_defaults(handler=run_slice)

    spots = commands.add_parser(
        "blindspots",
        help="where missed (FN) or false (FP) objects gather: embedding clusters, box "
        "attributes and metadata values, ranked by lift",
        description="Slices are ranked by the lower end of their lift's 95%% interval, so "
        "a small slice does not outrank a large one on noise.",
    )
    add_collection(spots)
    spots.add_argument("--outcome", choices=["FN", "FP"], default="FN", help="errors to slice")
    spots.add_argument("--clusters", type=int, default=8, help="clusters of errors (8)")
    spots.add_argument(
        "--kind",
        action="append",
        choices=["cluster", "box", "metadata"],
        help="slices of this kind only (repeatable; default: all)",
    )
    spots.add_argument(
        "--attribute", action="append", help="naming vocabulary (default: at night, blurry, ...)"
    )
    spots.add_argument("--top", type=int, default=10, help="slices to print (10)")
    spots.add_argument("--json", action="store_true", help="print as JSON")
    spots.set_defaults(handler=run_blindspots)

    errors = commands.add_parser(
        "label-errors",
        help="annotated objects (or labelled images) whose label their neighbours disagree with",
    )
    add_collection(errors)
    errors.add_argument(
        "--kind",
        choices=["auto", "object", "image"],
        default="auto",
        help="check annotated objects' labels or whole images' labels (auto, the default: "
        "objects where any is labelled, else images)",
    )
    errors.add_argument("-k", type=int, default=10, help="neighbours that vote (10)")
    errors.add_argument("--top", type=int, default=20, help="how many to list (20)")
    errors.add_argument("--json", action="store_true", help="print as JSON")
    errors.set_defaults(handler=run_label_errors)

    mapper = commands.add_parser(
        "map",
        help="a 2-D map (UMAP) of the collection's images and objects, stored with the index; "
        "writes a PNG",
    )
    mapper.add_argument("output", nargs="?", help="write the picture here, e.g. map.png")
    add_collection(mapper)
    mapper.add_argument("--model", default="", help="the index (default: the active one)")
    mapper.add_argument(
        "--color-by",
        choices=["label", "kind", "source", "outcome", "split"],
        default="label",
        help="what the colours show (label)",
    )
    mapper.add_argument(
        "--size", type=positive_int, default=1000, help="picture size in pixels (1000)"
    )
    mapper.add_argument("--refit", action="store_true", help="fit the whole layout again")
    mapper.add_argument("--json", action="store_true", help="print the update as JSON")
    mapper.set_defaults(handler=run_map)

    unique = commands.add_parser(
        "uniqueness",
        aliases=["unique"],
        help="the most unusual images (mean cosine distance to their nearest neighbours) and "
        "a representative sample (k-centre greedy)",
        description="Uniqueness is an image's mean cosine distance to its k nearest "
        "neighbours over the largest such mean (1: the most unusual). --sample N picks N "
        "images that cover the collection: the first nearest the mean, then each time the "
        "image farthest from those picked.",
    )
    add_collection(unique)
    unique.add_argument("--sample", type=int, metavar="N", help="a representative sample of N")
    unique.add_argument("-k", type=int, default=5, help="neighbours each score averages over (5)")
    unique.add_argument("--top", type=int, default=20, help="how many unusual ones to list (20)")
    unique.add_argument("--where", help="only records matching a filter, e.g. 'split=train'")
    unique.add_argument(
        "--kind", choices=["image", "object"], default="image", help="images (default) or objects"
    )
    unique.add_argument("--model", default="", help="the index (default: the active one)")
    unique.add_argument("--json", action="store_true", help="print as JSON")
    unique.set_defaults(handler=run_uniqueness)


def slice_ids(args: argparse.Namespace, collection: Any) -> list[str]:
    from pixseek.core.errors import InvalidInputError
    from pixseek.core.filters import Filter
    from pixseek.core.query import RecordQuery, SearchOptions, Term
    from pixseek.search import search

    given = [x for x in (args.text, args.similar, args.where) if x]
    if len(given) != 1:
        raise InvalidInputError("give one of TEXT, --similar ID or --where EXPR")
    if args.where:
        flt = Filter.where({"kind": "image"}).and_(Filter.parse(args.where))
        return [r.id for r in collection.records(flt)]
    query: Any = args.text or Term(RecordQuery(args.similar))
    k = 1000 if args.min_score is not None else args.top
    options = SearchOptions(k=k, kind="image", min_score=args.min_score)
    return [hit.id for hit in search(collection, query, options)]


def run_slice(args: argparse.Namespace) -> int:
    from pixseek.collection import open_collection
    from pixseek.jobs.slices import slice_report

    collection = open_collection(args.collection)
    report = slice_report(collection, set(slice_ids(args, collection)))
    shown = report.to_dict()
    rows = shown["classes"]
    if args.json:
        print(json.dumps(shown, indent=2))
        return 0
    print(
        f"slice of {report.inside.images} images: mAP {report.inside.map:.3f} "
        f"(whole {report.whole.map:.3f}, {report.inside.map - report.whole.map:+.3f}), "
        f"AP50 {report.inside.ap50:.3f} (whole {report.whole.ap50:.3f})"
    )
    print(
        f"{'class':<20} {'gt':>4} {'prec':>6} {'recall':>7} {'AP50':>6}   whole: prec recall AP50"
    )

    def show(x: float | None) -> str:
        return "  -  " if x is None else f"{x:.3f}"

    for r in sorted(rows, key=lambda r: -r["truth"]):
        print(
            f"{r['label']:<20} {r['truth']:>4} {show(r['precision']):>6} {show(r['recall']):>7} "
            f"{show(r['ap50']):>6}   {show(r['whole_precision'])} {show(r['whole_recall'])} "
            f"{show(r['whole_ap50'])}"
        )
    return 0


def run_blindspots(args: argparse.Namespace) -> int:
    from pixseek.collection import open_collection
    from pixseek.jobs.blindspots import ATTRIBUTES, KINDS, find_blindspots

    collection = open_collection(args.collection)
    vocabulary = tuple(args.attribute) if args.attribute else ATTRIBUTES
    report = find_blindspots(
        collection,
        outcome=args.outcome,
        clusters=args.clusters,
        vocabulary=vocabulary,
        kinds=tuple(args.kind) if args.kind else KINDS,
    )
    spots = report.blindspots[: max(0, args.top)]
    if args.json:
        print(json.dumps({**report.to_dict(), "blindspots": [s.to_dict() for s in spots]}))
        return 0
    rate = report.errors / report.objects if report.objects else 0.0
    counted = (
        "annotated objects missed or found as another class"
        if args.outcome == "FN"
        else "predictions false or of another class"
    )  # the population: the classes with any such error, ignored boxes left out
    print(
        f"{report.errors} of {report.objects} {counted} ({rate:.0%}), in the classes that have any"
    )
    for rank, spot in enumerate(spots, 1):
        print(
            f"{rank}. lift {spot.lift:.2f} (95% {spot.lift_low:.2f}-{spot.lift_high:.2f}): "
            f"{spot.errors} of {spot.objects} {args.outcome} ({spot.error_rate:.0%}, "
            f"expected {spot.expected_rate:.0%}) - {spot.kind}: {spot.name}"
        )
        for example in spot.examples[:3]:
            box = ", ".join(f"{v:.1f}" for v in example.box) if example.box else ""
            print(f"     {example.label} ({box}) {example.path}")
    return 0


def run_label_errors(args: argparse.Namespace) -> int:
    from pixseek.collection import open_collection
    from pixseek.jobs.label_errors import find_label_errors

    collection = open_collection(args.collection)
    report = find_label_errors(collection, kind=args.kind, k=args.k, top=args.top)
    if args.json:
        print(json.dumps(report.to_dict()))
        return 0
    print(
        f"{len(report.errors)} of {report.checked} labelled {args.kind}s whose "
        f"{report.neighbours} nearest neighbours suggest another label:"
    )
    for rank, error in enumerate(report.errors, 1):
        record = error.record
        verdict = f" [{error.verdict}]" if error.verdict else ""
        print(
            f"{rank}. {error.mistakenness:.2f} {record.label!r} -> {error.suggested!r} "
            f"({error.suggested_share:.0%} of the vote){verdict}  {record.id} {record.path}"
        )
    return 0


def run_map(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pixseek.collection import open_collection
    from pixseek.jobs.embedding_map import load_map, render_png, update_map

    if args.output and Path(args.output).suffix.lower() != ".png":
        from pixseek.core.errors import InvalidInputError

        raise InvalidInputError(f"the map is drawn as a PNG: name it .png, not {args.output}")
    collection = open_collection(args.collection)
    index = collection.index(args.model)
    report = update_map(collection, index, refit=args.refit)
    if args.output:
        layout = load_map(collection, index)
        Path(args.output).write_bytes(render_png(layout, args.color_by, args.size))
    if args.json:
        print(json.dumps(report.to_dict()))
        return 0
    how = "fitted" if report.refitted else f"{report.added} added, {report.removed} removed"
    print(f"map of {report.points} points in index {report.index} ({how})")
    if args.output:
        print(f"wrote {args.output} (colour: {args.color_by})")
    return 0


def run_uniqueness(args: argparse.Namespace) -> int:
    from pixseek.collection import open_collection
    from pixseek.core.filters import Filter
    from pixseek.jobs.uniqueness import find_uniqueness

    collection = open_collection(args.collection)
    report = find_uniqueness(
        collection,
        collection.index(args.model),
        k=args.k,
        top=args.top,
        sample=args.sample,
        where=Filter.parse(args.where),
        kind=args.kind,
    )
    if args.json:
        print(json.dumps(report.to_dict()))
        return 0
    print(
        f"{len(report.unusual)} most unusual of {report.checked} {args.kind}s (uniqueness: "
        f"mean cosine distance to the {report.neighbours} nearest, over the largest):"
    )
    for rank, item in enumerate(report.unusual, 1):
        label = f" [{item.record.label}]" if item.record.label else ""
        print(
            f"{rank:3d}. {item.uniqueness:.3f} ({item.distance:.4f}) {item.record.id}{label}  "
            f"{item.record.path}"
        )
    if report.sample:
        print(
            f"representative sample of {len(report.sample)}: every {args.kind} is within "
            f"cosine distance {report.coverage:.4f} of one of them"
        )
        for item in report.sample:
            label = f" [{item.record.label}]" if item.record.label else ""
            print(
                f"{item.rank:3d}. covers {item.covers} {item.record.id}{label}  {item.record.path}"
            )
    return 0
