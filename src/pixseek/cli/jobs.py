"""``pixseek duplicates``, ``match`` and ``classify``: the jobs image search is bought for."""

from __future__ import annotations

import argparse
import csv
import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pixseek.cli.args import add_collection, read_image_arg


def register(commands: Any) -> None:
    duplicates = commands.add_parser(
        "duplicates",
        help="groups of near-duplicate images, with a suggested keeper",
        description="Tiers: exact (same bytes), phash (same picture after re-encoding or "
        "resizing), embedding (cosine at or above --threshold). The keeper is the largest "
        "image, then the oldest file.",
    )
    add_collection(duplicates)
    duplicates.add_argument(
        "--threshold", type=float, default=0.95, help="cosine for the embedding tier (0.95)"
    )
    duplicates.add_argument(
        "--phash-distance", type=int, default=8, help="Hamming distance of 64 bits (8)"
    )
    duplicates.add_argument(
        "--tiers", default="exact,phash,embedding", help="tiers to use, comma-separated"
    )
    duplicates.add_argument("--index", default="", help="the index (model) to compare with")
    out = duplicates.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print groups as JSON")
    out.add_argument("--csv", type=Path, metavar="OUT", help="write one row per member")
    duplicates.set_defaults(handler=run_duplicates)

    match = commands.add_parser(
        "match", help="which collection images do these files copy (crops, edits, re-encodes)"
    )
    match.add_argument("files", nargs="+", type=Path, help="images from outside the collection")
    add_collection(match)
    match.add_argument("--threshold", type=float, default=0.9, help="cosine (0.9)")
    match.add_argument("--json", action="store_true", help="print as JSON")
    match.set_defaults(handler=run_match)

    classify = commands.add_parser(
        "classify", help="label images by a vote of the most similar labelled images"
    )
    classify.add_argument("files", nargs="*", type=Path, help="images to label")
    add_collection(classify)
    classify.add_argument("-k", type=int, default=10, help="neighbours that vote (10)")
    classify.add_argument(
        "--evaluate", action="store_true", help="accuracy on a held-out split instead"
    )
    classify.add_argument("--split", default="test", help="the held-out split (test)")
    classify.add_argument("--json", action="store_true", help="print as JSON")
    classify.set_defaults(handler=run_classify)


def _member(member: Any) -> dict[str, Any]:
    record = member.record
    return {
        "id": record.id,
        "path": record.path,
        "width": record.width,
        "height": record.height,
        "keeper": member.keeper,
        "tier": member.tier,
        "score": member.score,
    }


def run_duplicates(args: argparse.Namespace) -> int:
    from pixseek.collection import open_collection
    from pixseek.jobs.dedup import DedupOptions, find_duplicates

    options = DedupOptions(
        threshold=args.threshold,
        phash_distance=args.phash_distance,
        tiers=tuple(t.strip() for t in args.tiers.split(",") if t.strip()),
    )
    collection = open_collection(args.collection)
    groups = find_duplicates(collection, collection.index(args.index), options)
    rows = [[_member(m) for m in g.members] for g in groups]
    if args.json:
        print(json.dumps([{"members": members} for members in rows], indent=2))
    elif args.csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, ["group", *_member_fields()])
        writer.writeheader()
        for number, members in enumerate(rows, 1):
            writer.writerows({"group": number, **m} for m in members)
        args.csv.write_text(buffer.getvalue())
        print(f"wrote {len(rows)} groups to {args.csv}")
    else:
        for number, members in enumerate(rows, 1):
            print(f"group {number} ({len(members)} images):")
            for m in members:
                mark = "keep" if m["keeper"] else f"{m['tier']} {m['score']:.3f}"
                print(f"  {mark:>16}  {m['width']}x{m['height']}  {m['path']}")
        print(f"{len(rows)} groups, {sum(len(m) - 1 for m in rows)} duplicates to review")
    return 0


def _member_fields() -> list[str]:
    return ["id", "path", "width", "height", "keeper", "tier", "score"]


def run_match(args: argparse.Namespace) -> int:
    from pixseek.collection import open_collection
    from pixseek.jobs.match import MatchOptions, match_image

    collection = open_collection(args.collection)
    options = MatchOptions(threshold=args.threshold)
    found = [
        (path, match_image(collection, read_image_arg(path), options=options))
        for path in args.files
    ]
    if args.json:
        rows = [
            {"file": str(path), "matches": [_match(m) for m in matches]} for path, matches in found
        ]
        print(json.dumps(rows, indent=2))
        return 0
    for path, matches in found:
        print(f"{path}: {len(matches) or 'no'} matches")
        for m in matches:
            via = "" if m.via == "image" else f" (a {m.via} of it)"
            print(f"  {m.tier:>9} {m.score:.3f}  {m.record.path}{via}")
    return 0


def _match(match: Any) -> dict[str, Any]:
    return {
        "id": match.record.id,
        "path": match.record.path,
        "tier": match.tier,
        "score": match.score,
        "via": match.via,
    }


def run_classify(args: argparse.Namespace) -> int:
    from pixseek.collection import open_collection
    from pixseek.core.errors import InvalidInputError
    from pixseek.jobs.classify import ClassifyOptions, classify_images, evaluate_split

    collection = open_collection(args.collection)
    options = ClassifyOptions(k=args.k)
    if args.evaluate:
        accuracy = evaluate_split(collection, args.split, options=options)
        if args.json:
            print(json.dumps(asdict(accuracy)))
        else:
            print(
                f"{accuracy.images} {accuracy.split} images: top-1 accuracy {accuracy.top1:.3f}, "
                f"top-5 accuracy {accuracy.top5:.3f}"
            )
        return 0
    if not args.files:
        raise InvalidInputError("give image files to classify, or --evaluate")
    predictions = classify_images(
        collection, [read_image_arg(p) for p in args.files], options=options
    )
    if args.json:
        rows = [
            {"file": str(path), **asdict(prediction)}
            for path, prediction in zip(args.files, predictions, strict=True)
        ]
        print(json.dumps(rows, indent=2))
        return 0
    for path, prediction in zip(args.files, predictions, strict=True):
        others = ", ".join(f"{name} {share:.2f}" for name, share in prediction.alternatives[1:])
        suffix = f"; then {others}" if others else ""
        print(f"{path}: {prediction.label} ({prediction.confidence:.2f}){suffix}")
    return 0
