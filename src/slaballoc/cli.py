"""The ``slaballoc`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .demo import KINDS, DemoFailedError, run_demo

__all__ = ["build_parser", "main", "run"]


def _demo(args: argparse.Namespace) -> int:
    names = list(KINDS) if args.allocator == "all" else [args.allocator]
    for name in names:
        try:
            run_demo(KINDS[name], sys.stdout)
        except DemoFailedError as failure:
            print(f"slaballoc demo: {failure}", file=sys.stderr)
            return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line, one sub-command per job."""
    parser = argparse.ArgumentParser(
        prog="slaballoc",
        description="Slab and best-fit allocators inside one flat byte buffer.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="walk through the seed's eleven scenarios",
        description="Walk through the seed's eleven scenarios for one allocator or all three.",
    )
    demo.add_argument("allocator", choices=[*KINDS, "all"], nargs="?", default="all")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    status: int = args.run(args)
    return status


def run() -> None:
    """Entry point of the installed ``slaballoc`` script."""
    sys.exit(main())
