"""``pixseek duplicates``, ``match`` and ``classify``: the jobs image search is bought for."""

from __future__ import annotations

import argparse
import csv
import io
import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixseek.cli.args import add_collection, read_image_arg

if TYPE_CHECKING:
    from pixseek.jobs.match import MatchResult


def register(commands: Any) -> None:
    duplicates = commands.add_parser(
        "duplicates",
        help="groups of near-duplicate images, with a suggested keeper",
        description="Tiers: exact (same bytes), phash (same picture after re-encoding or "
        "resizing), embedding (cosine at or above --threshold). Thresholds are the "
        "index's calibrated ones (see `pixseek calibrate`) unless given. Every member is "
        "a duplicate of its group's keeper: the image linked to the most others, then the "
        "largest, then the oldest file.",
    )
    add_collection(duplicates)
    duplicates.add_argument(
        "--threshold",
        type=float,
        help="cosine for the embedding tier (default: the index's calibrated threshold)",
    )
    duplicates.add_argument(
        "--phash-distance",
        type=int,
        help="Hamming distance of 64 bits (default: the index's calibrated radius)",
    )
    duplicates.add_argument(
        "--across",
        choices=["split", "label", "source"],
        help="only near-duplicates whose values of this field differ (split: leaks "
        "between train and test)",
    )
    duplicates.add_argument(
        "--tiers", default="exact,phash,embedding", help="tiers to use, comma-separated"
    )
    add_views_flags(
        duplicates,
        off="compare images only as they are, not also turned ±10° and cut to their centre "
        "and each 60%% corner (views find rotated copies and crops; the first run embeds "
        "seven views of each image, kept for later runs)",
        make="make the views that are missing even for more than 100,000 images (by default "
        "only those kept are used there)",
    )
    duplicates.add_argument("--index", default="", help="the index (model) to compare with")
    out = duplicates.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print groups as JSON")
    out.add_argument("--csv", type=Path, metavar="OUT", help="write one row per member")
    duplicates.set_defaults(handler=run_duplicates)

    match = commands.add_parser(
        "match", help="which collection images do these files copy (crops, edits, re-encodes)"
    )
    match.add_argument(
        "files",
        nargs="+",
        type=Path,
        help="images from outside the collection, or folders of them (walked for images; "
        "embedded a batch at a time)",
    )
    add_collection(match)
    match.add_argument(
        "--threshold",
        type=float,
        help="cosine (default: the index's calibrated threshold for outside images, which "
        "few of the collection's own images reach with another: see `pixseek info`)",
    )
    add_views_flags(
        match,
        off="compare a query that matches nothing as it is only as it is: not with the "
        "collection's turned and corner views (crops of a corner are found through them; "
        "the first such query makes them, seven embeddings an image, kept for later), nor "
        "turned back or cut to its centre",
        make="make the collection's views when none are kept even for more than 10,000 "
        "images (by default, beyond that only views made by `pixseek index --views` or "
        "duplicates are used)",
    )
    match.add_argument("--index", default="", help="the index (model) to compare with")
    match.add_argument("--json", action="store_true", help="print as JSON")
    match.add_argument("--quiet", action="store_true", help="no progress bars")
    match.set_defaults(handler=run_match)

    calibrate = commands.add_parser(
        "calibrate",
        help="measure at what similarity this index's model sees a copy",
        description="Edits a sample of the collection's own images the ways copies are "
        "(resize, JPEG, crops, flips, rotations, brightness, grayscale, overlays, borders), "
        "embeds them and keeps, with the index, the similarity threshold and hash radius "
        "that reach the target precision, with the precision and recall measured there. "
        "duplicates and match use them by default. Runs by itself when an index is built.",
    )
    add_collection(calibrate)
    calibrate.add_argument("--index", default="", help="the index (model) to calibrate")
    calibrate.add_argument(
        "--target-precision", type=float, default=0.99, help="precision to reach (0.99)"
    )
    calibrate.add_argument(
        "--sample",
        type=int,
        default=40,
        help="images to edit (40; more when the target precision needs more copies to be "
        "shown: 118 for 0.999)",
    )
    calibrate.add_argument("--json", action="store_true", help="print as JSON")
    calibrate.set_defaults(handler=run_calibrate)

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


def add_views_flags(parser: argparse.ArgumentParser, off: str, make: str) -> None:
    """``--no-views`` (``views`` False) and ``--views`` (True), one or neither (None)."""
    views = parser.add_mutually_exclusive_group()
    views.add_argument("--no-views", dest="views", action="store_false", default=None, help=off)
    views.add_argument("--views", dest="views", action="store_true", help=make)


def _csv_row(group: int, member: dict[str, Any]) -> dict[str, Any]:
    record = member["record"]
    return {
        "group": group,
        **{name: record[name] for name in ("id", "path", "width", "height")},
        **{name: member[name] for name in ("keeper", "tier", "score", "probability", "view")},
    }


CSV_FIELDS = [
    "group",
    *("id", "path", "width", "height"),
    *("keeper", "tier", "score", "probability", "view"),
]


def _source(given: object, calibrated: bool) -> str:
    """Where a duplicates setting came from, said beside it."""
    if given is not None:
        return "given"
    return "calibrated" if calibrated else "not calibrated: too few images to measure"


def run_duplicates(args: argparse.Namespace) -> int:
    from pixseek.cli.render import ViewsBar
    from pixseek.collection import open_collection
    from pixseek.jobs.dedup import DedupOptions, find_duplicates

    options = DedupOptions(
        threshold=args.threshold,
        phash_distance=args.phash_distance,
        tiers=tuple(t.strip() for t in args.tiers.split(",") if t.strip()),
        across=args.across or "",
        views=args.views,
    )
    collection = open_collection(args.collection)
    with ViewsBar() as bar:
        found = find_duplicates(collection, collection.index(args.index), options, bar.update)
    result = found.to_dict()
    groups = result["groups"]
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    if args.csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, CSV_FIELDS)
        writer.writeheader()
        for number, group in enumerate(groups, 1):
            writer.writerows(_csv_row(number, m) for m in group["members"])
        args.csv.write_text(buffer.getvalue())
        print(f"wrote {len(groups)} groups to {args.csv}")
        return 0
    views = f", views of {result['views']} images compared" if result["views"] else ""
    print(
        f"embedding tier at cosine >= {result['threshold']:.4f} "
        f"({_source(args.threshold, result['calibrated'])}), perceptual hash within "
        f"{result['phash_distance']} bits "
        f"({_source(args.phash_distance, result['phash_calibrated'])}){views}"
    )
    for number, group in enumerate(groups, 1):
        print(f"group {number} ({len(group['members'])} images):")
        for m in group["members"]:
            record = m["record"]
            chance = "" if m["probability"] is None else f" p={m['probability']:.2f}"
            mark = "keep" if m["keeper"] else f"{m['tier']} {m['score']:.3f}{chance}"
            split = f" [{record['metadata'].get('split')}]" if args.across == "split" else ""
            view = f" (via {m['view']})" if m["view"] else ""
            size = f"{record['width']}x{record['height']}"
            print(f"  {mark:>24}  {size}  {record['path']}{split}{view}")
    print(
        f"{len(groups)} groups, {sum(len(g['members']) - 1 for g in groups)} duplicates to review"
    )
    return 0


def run_match(args: argparse.Namespace) -> int:
    """Each file's matches as it is done (JSON: a list at the end); a file that cannot be
    read or decoded is reported and the others are still matched (exit status 1)."""
    import sys

    from pixseek.cli.render import FilesBar, ViewsBar
    from pixseek.collection import open_collection
    from pixseek.jobs.match import MISSING, MatchOptions, match_files

    collection = open_collection(args.collection)
    index = collection.index(args.index)
    options = MatchOptions(threshold=args.threshold, views=args.views is not False)
    if args.views:
        options = replace(options, make_views_up_to=sys.maxsize)
    paths = query_files(args.files)
    answers: list[dict[str, Any]] = []
    failed = missing = 0
    with (
        ViewsBar(enabled=not args.quiet) as views,
        FilesBar(len(paths), enabled=not args.quiet and len(paths) > 1) as bar,
    ):
        for path, result in match_files(collection, paths, index, options, views.update):
            bar.advance()
            if isinstance(result, Exception):
                failed += 1
                answers.append({"file": str(path), "error": str(result)})
                bar.write(f"pixseek: cannot match {path}: {result}", sys.stderr)
                continue
            # views are missing for a query that needed them (one found as it is did not;
            # in a small collection the first that needs them makes them)
            missing += result.views == MISSING and not result.matches
            answers.append({"file": str(path), **result.to_dict()})
            if not args.json:
                bar.write(match_lines(path, result))
    if missing:
        print(
            "pixseek: this collection keeps no turned and corner views, so crops of a corner "
            "are not found: make them once with `pixseek index --views` (or match --views)",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(answers, indent=2))
    return 1 if failed else 0


def query_files(given: list[Path]) -> list[Path]:
    """The files named, and the images in the folders named (walked as ``index`` walks);
    a folder with no image in it is an error, not an empty answer."""
    from pixseek.core.errors import InvalidInputError
    from pixseek.ingest.sources.folder import walk_images

    files: list[Path] = []
    for path in given:
        found = list(walk_images(path)) if path.is_dir() else [path]
        if not found:
            raise InvalidInputError(f"no image files in the folder {path}")
        files += found
    return files


def match_lines(path: Path, result: MatchResult) -> str:
    count = len(result.matches)
    lines = [f"{path}: {count or 'no'} match{'' if count == 1 else 'es'}"]
    for m in result.matches:
        at = "" if m.box is None else f" at {list(m.box)}"
        part = "" if m.via == "image" else f" (a {m.via} of it{at})"
        view = "" if m.view == "as is" else f" [query {m.view}]"
        chance = "" if m.probability is None else f" p={m.probability:.2f}"
        lines.append(f"  {m.tier:>9} {m.score:.3f}{chance}  {m.record.path}{part}{view}")
    return "\n".join(lines)


def run_calibrate(args: argparse.Namespace) -> int:
    import sys

    from pixseek.collection import open_collection
    from pixseek.jobs.calibrate import CalibrationOptions, calibrate

    collection = open_collection(args.collection)
    options = CalibrationOptions(target_precision=args.target_precision, sample=args.sample)

    def say(message: str) -> None:
        print(f"pixseek: {message}", file=sys.stderr, flush=True)

    result = calibrate(collection, collection.index(args.index), options, progress=say)
    print(json.dumps(asdict(result), indent=2) if args.json else result.summary())
    return 0


def _read_each(paths: list[Path]) -> list[bytes | Exception]:
    """Each file's bytes, or why it cannot be read (said beside the others' answers)."""
    from pixseek.core.errors import ImageDecodeError

    read: list[bytes | Exception] = []
    for path in paths:
        try:
            read.append(read_image_arg(path))
        except ImageDecodeError as exc:
            read.append(exc)
    return read


def run_classify(args: argparse.Namespace) -> int:
    import sys

    from pixseek.collection import open_collection
    from pixseek.core.errors import InvalidInputError
    from pixseek.jobs.classify import ClassifyOptions, Prediction, classify_each, evaluate_split

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
    read = _read_each(args.files)
    readable = [r for r in read if isinstance(r, bytes)]
    votes = iter(classify_each(collection, readable, options=options))
    answers = [
        (path, next(votes) if isinstance(r, bytes) else r)
        for path, r in zip(args.files, read, strict=True)
    ]
    failed = [(p, r) for p, r in answers if not isinstance(r, Prediction)]
    for path, error in failed:
        print(f"pixseek: cannot classify {path}: {error}", file=sys.stderr)
    done = [(p, r) for p, r in answers if isinstance(r, Prediction)]
    if args.json:
        print(json.dumps([{"file": str(path), **asdict(r)} for path, r in done], indent=2))
    else:
        for path, prediction in done:
            others = ", ".join(f"{name} {share:.2f}" for name, share in prediction.alternatives[1:])
            suffix = f"; then {others}" if others else ""
            print(f"{path}: {prediction.label} ({prediction.confidence:.2f}){suffix}")
    return 1 if failed else 0
