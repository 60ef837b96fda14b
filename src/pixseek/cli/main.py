"""pixseek: search your images by text, by image and by object.

Index a folder, then search it:

  pixseek index ~/Pictures --collection ~/pics
  pixseek search "a dog on a beach" --collection ~/pics

Every command has its own --help.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pixseek.cli import debug, ingest, jobs, keys, manage, model, models, query, serve

COMMAND_GROUPS = (ingest, query, jobs, debug, manage, models, model, serve, keys)
SEARCH_VALUE_FLAGS = {
    "--collection",
    "-k",
    "--where",
    "--min-score",
    "--more-like",
    "--less-like",
    "--index",
    "--model",
    "--text-model",
    "--runtime",
    "--precision",
    "--device",
    "--batch-size",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixseek", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(commands)
    return parser


def split_negative_terms(argv: list[str]) -> tuple[list[str], list[str]]:
    """Pull ``-grass``-style terms out of ``search`` arguments before argparse sees them."""
    if not argv or argv[0] != "search":
        return argv, []
    kept, negatives = [argv[0]], []
    previous = ""
    for token in argv[1:]:
        flag = token.split("=", 1)[0]
        is_option = flag in SEARCH_VALUE_FLAGS or flag.startswith("--") or token[:2] == "-k"
        if (
            token.startswith("-")
            and len(token) > 1
            and not is_option
            and token != "--"
            and (previous not in SEARCH_VALUE_FLAGS)
        ):
            negatives.append(token)
        else:
            kept.append(token)
        previous = token
    return kept, negatives


def join_value_flags(argv: list[str], flags: frozenset[str] = frozenset({"--box"})) -> list[str]:
    """``--box -5,10,50,50`` → ``--box=-5,10,50,50``: argparse takes a value that starts
    with '-' for an option unless it is joined to its flag."""
    joined: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        if token in flags:
            value = next(tokens, None)
            joined.append(token if value is None else f"{token}={value}")
        else:
            joined.append(token)
    return joined


def run(argv: Sequence[str]) -> int:
    argv, negatives = split_negative_terms(join_value_flags(list(argv)))
    args = build_parser().parse_args(argv)
    if negatives:
        args.terms = [*args.terms, *negatives]
    code: int = args.handler(args)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            return _main(sys.argv[1:] if argv is None else argv)
        finally:
            sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except BrokenPipeError:
        _silence_stdout()
        return 1


def _main(argv: Sequence[str]) -> int:
    from pixseek.core.errors import InvalidInputError, PixseekError

    try:
        return run(argv)
    except PixseekError as exc:
        kind = "invalid input" if isinstance(exc, InvalidInputError) else "error"
        print(f"pixseek: {kind}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pixseek: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


def _silence_stdout() -> None:
    """The reader of stdout went away (``pixseek ... | head``): drop the rest quietly.

    Python flushes stdout once more at exit; pointing it at devnull keeps that flush
    from raising a second BrokenPipeError.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
