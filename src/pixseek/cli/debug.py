"""``pixseek slice`` and ``pixseek blindspots``: where a detector fails, measured."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pixseek.cli.args import add_collection


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
        "blindspots", help="clusters of missed (FN) or false (FP) objects, ranked by lift"
    )
    add_collection(spots)
    spots.add_argument("--outcome", choices=["FN", "FP"], default="FN", help="errors to cluster")
    spots.add_argument("--clusters", type=int, default=8, help="clusters of errors (8)")
    spots.add_argument(
        "--attribute", action="append", help="naming vocabulary (default: at night, blurry, ...)"
    )
    spots.add_argument("--json", action="store_true", help="print as JSON")
    spots.set_defaults(handler=run_blindspots)


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


def _row(whole: Any, inside: Any) -> dict[str, Any]:
    def value(x: float | None) -> float | None:
        return None if x is None else round(x, 4)

    return {
        "label": whole.label,
        "truth": inside.truth,
        "precision": value(inside.precision),
        "recall": value(inside.recall),
        "ap50": value(inside.ap50),
        "whole_precision": value(whole.precision),
        "whole_recall": value(whole.recall),
        "whole_ap50": value(whole.ap50),
    }


def run_slice(args: argparse.Namespace) -> int:
    from pixseek.collection import open_collection
    from pixseek.jobs.debug import slice_report

    collection = open_collection(args.collection)
    report = slice_report(collection, set(slice_ids(args, collection)))
    rows = [
        _row(report.whole.classes[label], report.inside.classes[label])
        for label in report.whole.classes
        if report.inside.classes[label].truth or report.inside.classes[label].fp
    ]
    summary = {
        "images": report.inside.images,
        "map": round(report.inside.map, 4),
        "whole_map": round(report.whole.map, 4),
        "ap50": round(report.inside.ap50, 4),
        "whole_ap50": round(report.whole.ap50, 4),
        "recall": report.inside.recall,
        "whole_recall": report.whole.recall,
    }
    if args.json:
        print(json.dumps({"summary": summary, "classes": rows}, indent=2))
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
    from pixseek.jobs.debug import ATTRIBUTES, find_blindspots

    collection = open_collection(args.collection)
    vocabulary = tuple(args.attribute) if args.attribute else ATTRIBUTES
    spots = find_blindspots(
        collection, outcome=args.outcome, clusters=args.clusters, vocabulary=vocabulary
    )
    if args.json:
        rows = [
            {
                "rank": rank,
                "errors": spot.errors,
                "objects": spot.objects,
                "error_rate": spot.error_rate,
                "lift": spot.lift,
                "names": spot.names,
                "examples": [_example(r) for r in spot.examples],
            }
            for rank, spot in enumerate(spots, 1)
        ]
        print(json.dumps(rows, indent=2))
        return 0
    for rank, spot in enumerate(spots, 1):
        print(
            f"{rank}. lift {spot.lift:.2f}: {spot.errors} of {spot.objects} objects "
            f"{args.outcome} ({spot.error_rate:.0%}) - {'; '.join(spot.names)}"
        )
        for example in spot.examples:
            print(f"     {example.label} {example.box} {example.path}")
    return 0


def _example(record: Any) -> dict[str, Any]:
    return {"id": record.id, "path": record.path, "box": record.box, "label": record.label}
