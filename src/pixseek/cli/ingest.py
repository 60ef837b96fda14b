"""``pixseek index`` and ``pixseek remove``: write to a collection."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pixseek.cli.args import add_collection, add_model, embedder_options, positive_int


def register(commands: Any) -> None:
    index = commands.add_parser(
        "index",
        help="index images from folders, a COCO file or a URL list",
        description="Embed every image (and annotated object) and store it in the collection. "
        "Re-running indexes only what changed; an interrupted run resumes.",
    )
    index.add_argument("paths", nargs="+", type=Path, help="folders or image files")
    add_collection(index)
    index.add_argument(
        "--coco", type=Path, metavar="JSON", help="COCO instances json; PATH is its image folder"
    )
    index.add_argument(
        "--predictions",
        type=Path,
        metavar="JSON",
        help="with --coco: a detector's results (COCO results format) stored beside the "
        "ground truth, every object marked TP, FP, FN or wrong_class",
    )
    index.add_argument(
        "--urls", action="store_true", help="PATH is a text file with one image URL per line"
    )
    index.add_argument(
        "--label-from-folder", action="store_true", help="label each image by its folder name"
    )
    index.add_argument(
        "--holdout",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="put this fraction of the images in split=test and the rest in split=train, "
        "by content hash (for classify --evaluate on a folder)",
    )
    index.add_argument(
        "--store",
        default="",
        metavar="URI",
        help="for a new collection: keep its vectors in this store, e.g. milvus://HOST:PORT "
        "(default: embedded LanceDB in the collection directory)",
    )
    index.add_argument(
        "--crop-margin", type=float, help="context around object crops, a fraction (0.1)"
    )
    index.add_argument(
        "--regions",
        metavar="grid[:SCALES]",
        help="also embed overlapping windows of every image as 'region' objects, for object "
        "search without boxes: 'grid' (windows of 1/2 and 1/3 of each side), 'grid:0.5,0.25', "
        "or 'none' to stop",
    )
    index.add_argument(
        "--views",
        action="store_true",
        help="also embed seven views of every image (turned ±10°, its centre, its 60%% "
        "corners), which duplicates and match compare to find rotated copies and crops; "
        "kept, and brought up to date by every later run (duplicates makes them too)",
    )
    index.add_argument("--workers", type=positive_int, default=2, help="decode threads (default 2)")
    index.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="run decode and embedding here, or on a Ray cluster (pip install 'ray[data]')",
    )
    index.add_argument(
        "--ray-address", help="a running Ray cluster (default: start a local one for the run)"
    )
    index.add_argument(
        "--actors",
        type=positive_int,
        default=1,
        help="with --engine ray: model copies (one GPU each)",
    )
    index.add_argument("--sync", action="store_true", help="drop indexed files now missing")
    index.add_argument(
        "--exact-decode", action="store_true", help="decode JPEGs at full size (slower)"
    )
    index.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model(index)
    index.set_defaults(handler=run_index)

    remove = commands.add_parser("remove", help="remove images (and their objects) by id")
    remove.add_argument("ids", nargs="+", help="image ids")
    add_collection(remove)
    remove.set_defaults(handler=run_remove)


def _source(args: argparse.Namespace) -> Any:
    from pixseek.core.errors import InvalidInputError
    from pixseek.ingest import CocoSource, FolderSource, UrlListSource

    if args.coco:
        if len(args.paths) != 1 or not args.paths[0].is_dir():
            raise InvalidInputError("with --coco, give exactly one PATH: the images' folder")
        if args.sync or args.holdout:
            raise InvalidInputError("--sync and --holdout apply to folders, not to --coco imports")
        source = CocoSource(args.coco, args.paths[0], args.predictions)
        check = source.files_check()
        if check.checked and check.missing == check.checked:
            raise InvalidInputError(
                f"none of the first {check.checked} images of {args.coco} is in "
                f"{args.paths[0]}: is PATH the folder that holds the COCO file_name entries?"
            )
        if check.unlisted:
            print(
                f"pixseek: note: {check.unlisted} image files in {args.paths[0]} are not in "
                f"{args.coco.name} and are not indexed (index the folder without --coco to "
                "add them)",
                file=sys.stderr,
            )
        return source
    if args.predictions is not None:
        raise InvalidInputError("--predictions goes with --coco (the ground truth)")
    if args.holdout and args.urls:
        raise InvalidInputError("--holdout applies to folders")
    if args.urls:
        if len(args.paths) != 1:
            raise InvalidInputError("with --urls, give exactly one PATH: the URL list")
        return UrlListSource(args.paths[0])
    return FolderSource(
        tuple(args.paths), label_from_folder=args.label_from_folder, holdout=args.holdout
    )


def run_index(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from pixseek.cli.render import TqdmProgress, announce_writer_wait, report_text
    from pixseek.collection import exists, open_collection
    from pixseek.ingest import IngestOptions, ingest
    from pixseek.ingest.tasks import sample_files

    source = _source(args)
    options = embedder_options(args)
    if not exists(args.collection):  # a new collection: check int8 on the user's own images
        options = replace(options, calibration=tuple(sample_files(source)))
    regions = None if args.regions is None else parse_regions(args.regions)
    collection = open_collection(
        args.collection, options, create=True, crop_margin=args.crop_margin, store=args.store
    )
    if regions is not None and regions != collection.regions:
        collection.set_regions(regions)  # kept: later runs embed the same windows
    options = IngestOptions(
        batch_size=max(args.batch_size, 1),
        workers=args.workers,
        sync=args.sync,
        fast_decode=not args.exact_decode,
    )
    progress = TqdmProgress(enabled=not args.quiet)
    announce_writer_wait(collection)
    if args.engine == "ray":
        from pixseek.core.errors import InvalidInputError
        from pixseek.ingest.runners.ray_runner import RayRunner

        if args.sync:
            raise InvalidInputError("--sync runs with the local engine only")
        runner = RayRunner(collection, options, progress, args.ray_address, args.actors)
        report = runner.run(source)
    else:
        report = ingest(collection, source, options, progress)
    print(report_text(report))
    print_new_calibrations(collection)
    print_views(collection, args.views, not args.quiet)
    print_match_levels(collection)
    if report.all_failed:
        print("pixseek: error: no image could be indexed (see the failures above)", file=sys.stderr)
        return 1
    return 0


def print_new_calibrations(collection: Any) -> None:
    """Copy detection is calibrated once an index is built (see ``pixseek calibrate``)."""
    from pixseek.jobs.calibrate import calibrate_missing

    for name, calibration in calibrate_missing(collection):
        print(f"calibrated copy detection for index {name!r}: {calibration.summary()}")


def print_views(collection: Any, make: bool, bar: bool) -> None:
    """Views kept for copy detection, made (``--views``) or brought up to date."""
    from pixseek.cli.render import ViewsBar
    from pixseek.jobs.copy_views import refresh_views

    with ViewsBar(enabled=bar) as progress:
        done = refresh_views(collection, make, progress.update)
    for name, seen in done:
        unreadable = f"; {seen.unreadable} unreadable" if seen.unreadable else ""
        print(
            f"views of {seen.images} images kept for index {name!r} "
            f"({seen.embedded} embedded now{unreadable})"
        )


def print_match_levels(collection: Any) -> None:
    """Match's levels for outside images, measured again where the images or views added
    made the kept ones stale (rather than inside the next match)."""
    from pixseek.jobs.false_alarms import keep_levels

    for name, levels in keep_levels(collection):
        print(f"index {name!r}: {levels.summary()}")


DEFAULT_REGION_SCALES = (0.5, 1 / 3)


def parse_regions(text: str) -> tuple[float, ...]:
    from pixseek.core.errors import InvalidInputError

    kind, _, scales = text.partition(":")
    if kind == "none" and not scales:
        return ()
    if kind != "grid":
        raise InvalidInputError(f"--regions takes grid, grid:SCALES or none, not {text!r}")
    if not scales:
        return DEFAULT_REGION_SCALES
    try:
        values = tuple(float(v) for v in scales.split(","))
    except ValueError as exc:
        raise InvalidInputError(f"--regions scales are numbers, got {scales!r}") from exc
    if not values or len(values) > 4 or not all(0.05 <= v <= 1 for v in values):
        raise InvalidInputError("--regions takes 1 to 4 scales between 0.05 and 1")
    return values


def run_remove(args: argparse.Namespace) -> int:
    from pixseek.collection import open_collection

    removed = open_collection(args.collection).remove(list(args.ids))
    missing = len(set(args.ids)) - removed
    suffix = f" ({missing} ids were not images of this collection)" if missing else ""
    print(f"removed {removed} images and their objects{suffix}")
    return 1 if missing else 0  # as rm: a script learns that an id was not there
