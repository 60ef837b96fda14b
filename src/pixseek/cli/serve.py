"""``pixseek serve`` and ``pixseek demo``: the HTTP API and web UI, and an offline demo."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pixseek.cli.args import add_model

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="HTTP API and web UI for the collections in DIR")
    serve.add_argument("--root", required=True, type=Path, help="directory of collections")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--api-key", help="require 'Authorization: Bearer KEY' on the API")
    serve.add_argument(
        "--models-root",
        type=Path,
        help="directory whose model folders clients may name for new collections "
        "(without it, only hub ids)",
    )
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="without --api-key, also answer requests addressed to this host name or IP",
    )
    add_model(serve)
    serve.set_defaults(handler=run_serve)

    demo = commands.add_parser(
        "demo", help="a synthetic collection and model, offline (writes ./pixseek-demo)"
    )
    demo.add_argument("--dir", type=Path, default=Path("pixseek-demo"), help="output folder")
    demo.add_argument("--images", type=int, default=400, help="images to generate")
    demo.add_argument("--serve", action="store_true", help="then open the web UI on it")
    demo.add_argument("--port", type=int, default=8000, help="port for --serve")
    demo.add_argument(
        "--train", action="store_true", help="train a new model instead of the shipped one"
    )
    demo.set_defaults(handler=run_demo)


def serve(root: Path, host: str, port: int, api_key: str | None, args: Any) -> int:
    import uvicorn

    from pixseek.api import ServeSettings, create_app

    settings = ServeSettings(
        root=root,
        host=host,
        port=port,
        api_key=api_key,
        models_root=getattr(args, "models_root", None),
        allowed_hosts=[*ServeSettings().allowed_hosts, *getattr(args, "allowed_host", [])],
        **{name: getattr(args, name) for name in ("model", "runtime", "precision", "device")},
    )
    if host not in LOOPBACK and api_key is None:
        print(
            f"pixseek: WARNING: serving on {host} without --api-key: anyone who can reach "
            "this port can read, add and delete images. Set --api-key (or PIXSEEK_API_KEY).",
            file=sys.stderr,
        )
    print(f"pixseek: serving {root} on http://{host}:{port}/", flush=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    return serve(args.root, args.host, args.port, args.api_key, args)


def run_demo(args: argparse.Namespace) -> int:
    from pixseek.cli.render import TrainBar
    from pixseek.demo.demo import (
        EXAMPLE_COUNT,
        DemoOptions,
        build_demo,
        example_queries,
        example_searches,
    )

    demo = build_demo(
        DemoOptions(args.dir, args.images, train=args.train),
        progress=TrainBar() if args.train else None,
    )
    lines = [
        f"demo collection: {demo.collection.root} ({demo.collection.count()} records)",
        f"model: {demo.model}",
        "",
    ]
    *shown, example = example_queries(demo, EXAMPLE_COUNT + 1)
    for query, hits in example_searches(demo, shown):
        lines.append(f'search "{query}":')
        lines += [
            f"  {hit.score:.3f}  {demo.captions.get(hit.path, hit.label or '')}" for hit in hits
        ]
    lines.append(f"\ntry: pixseek search '{example}' --collection {demo.collection.root}")
    print("\n".join(lines), flush=True)
    if not args.serve:
        return 0
    defaults = argparse.Namespace(model="", runtime="auto", precision="auto", device="auto")
    return serve(demo.collection.root.parent, "127.0.0.1", args.port, None, defaults)
