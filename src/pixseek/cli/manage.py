"""``pixseek info`` and ``pixseek export``: describe and dump a collection."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pixseek.cli.args import add_collection


def register(commands: Any) -> None:
    info = commands.add_parser("info", help="model, runtime, counts and failures of a collection")
    add_collection(info)
    info.add_argument("--json", action="store_true", help="print as JSON")
    info.set_defaults(handler=run_info)

    optimize = commands.add_parser(
        "optimize",
        help="compact the store and build its search indexes now (ingest does it at the end)",
    )
    add_collection(optimize)
    optimize.set_defaults(handler=run_optimize)

    export = commands.add_parser(
        "export",
        help="write records and vectors to Parquet, CSV or JSON Lines",
        description="Write every record (all its fields, the filter columns and the vector) "
        "to OUT. The extension chooses the format: .parquet, .csv (lists, metadata and the "
        "vector as JSON text in their cells) or .jsonl (one JSON object per line).",
    )
    export.add_argument("out", type=Path, help="the .parquet, .csv or .jsonl file to write")
    add_collection(export)
    export.set_defaults(handler=run_export)


def run_info(args: argparse.Namespace) -> int:
    from pixseek.cli.render import info_json, info_text
    from pixseek.collection import open_collection

    info = open_collection(args.collection).info()
    print(info_json(info) if args.json else info_text(info))
    return 0


def run_export(args: argparse.Namespace) -> int:
    from pixseek.collection import open_collection
    from pixseek.jobs.export import export_format, export_records

    export_format(args.out)  # refuse an unknown extension before opening the collection
    count = export_records(open_collection(args.collection), args.out)
    print(f"wrote {count} records to {args.out}")
    return 0


def run_optimize(args: argparse.Namespace) -> int:
    from pixseek.cli.render import announce_writer_wait
    from pixseek.collection import open_collection

    collection = open_collection(args.collection)
    announce_writer_wait(collection)
    with collection.writing():
        for name, index in sorted(collection.indexes.items()):
            index.store.persist()
            print(f"index {name!r}: {index.store.count()} records, optimized")
    return 0
