"""``pixseek keys``: scoped API keys of a server root, and ``pixseek feedback``: stored
judgements."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    keys = commands.add_parser(
        "keys",
        help="create, list and revoke the API keys of a server root",
        description="Roles: search (read and search, give feedback), write (also add and "
        "remove images), admin (everything). Keys are stored hashed in DIR; a running "
        "server sees a change at its next request.",
    )
    actions = keys.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="create, list or revoke"
    )
    create = actions.add_parser("create", help="a new key; its token is printed once")
    create.add_argument("--root", required=True, type=Path, help="the server's root (serve --root)")
    create.add_argument("--role", required=True, choices=["search", "write", "admin"])
    create.add_argument(
        "--collections", default="", metavar="NAME,...", help="only these collections (all)"
    )
    create.add_argument("--name", default="", help="a note on who holds it")
    create.add_argument("--json", action="store_true", help="print as JSON")
    create.set_defaults(handler=run_create)
    listed = actions.add_parser("list", help="every key (never its secret)")
    listed.add_argument("--root", required=True, type=Path, help="the server's root")
    listed.add_argument("--json", action="store_true", help="print as JSON")
    listed.set_defaults(handler=run_list)
    revoke = actions.add_parser("revoke", help="refuse a key from now on")
    revoke.add_argument("key_id", help="the key's id (see keys list)")
    revoke.add_argument("--root", required=True, type=Path, help="the server's root")
    revoke.set_defaults(handler=run_revoke)

    feedback = commands.add_parser(
        "feedback", help="judgements stored with a collection (search --remember, the API, the UI)"
    )
    feedback_actions = feedback.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="export"
    )
    export = feedback_actions.add_parser(
        "export", help="write every judgement as JSON Lines (.jsonl) or CSV (.csv)"
    )
    export.add_argument("out", nargs="?", type=Path, help="the file (default: standard output)")
    export.add_argument(
        "--collection", required=True, type=Path, metavar="DIR", help="collection directory"
    )
    export.set_defaults(handler=run_export)


def _when(stamp: float | None) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M") if stamp else "-"


def run_create(args: argparse.Namespace) -> int:
    from pixseek.api.keys import KeyStore

    scope = [name.strip() for name in args.collections.split(",") if name.strip()]
    key, token = KeyStore(args.root).create(args.name, args.role, scope or None)
    if args.json:
        print(json.dumps({**key.public(), "token": token}))
        return 0
    where = ", ".join(key.collections) if key.collections else "every collection"
    print(f"key {key.id} ({key.role}, {where}):\n{token}")
    print("pixseek: keep the token: it is stored hashed and not shown again", file=sys.stderr)
    return 0


def run_list(args: argparse.Namespace) -> int:
    from pixseek.api.keys import KeyStore

    keys = KeyStore(args.root).list()
    if args.json:
        print(json.dumps([k.public() for k in keys], indent=2))
        return 0
    for k in keys:
        where = ",".join(k.collections) if k.collections else "*"
        state = f"revoked {_when(k.revoked)}" if k.revoked else "active"
        print(f"{k.id}  {k.role:<6}  {where}  {_when(k.created)}  {state}  {k.name}")
    if not keys:
        print("no keys")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    from pixseek.api.keys import KeyStore

    key = KeyStore(args.root).revoke(args.key_id)
    print(f"revoked key {key.id} ({key.role})")
    return 0


def run_export(args: argparse.Namespace) -> int:
    import csv
    import io

    from pixseek.collection import open_collection
    from pixseek.core.errors import InvalidInputError

    if args.out is not None and args.out.suffix not in (".jsonl", ".csv"):
        raise InvalidInputError(f"{args.out}: write .jsonl or .csv")
    rows = [j.to_dict() for j in open_collection(args.collection).feedback.list()]
    if args.out is not None and args.out.suffix == ".csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(
            buffer, ["id", "query_kind", "query", "result_id", "value", "key_id", "at"]
        )
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    else:
        text = "".join(json.dumps(row) + "\n" for row in rows)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    args.out.write_text(text)
    print(f"wrote {len(rows)} judgements to {args.out}")
    return 0
