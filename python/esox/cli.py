"""The ``esox`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def demo(args: argparse.Namespace) -> int:
    """Run a demo application and show what happened."""
    from esox.examples.demo import main

    main(args.example, args.db, args.accounts, args.transfers, args.seed)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``esox`` console script."""
    parser = argparse.ArgumentParser(
        prog="esox", description="esox: event sourcing with a Rust core"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser(
        "demo", help="run the bank accounts demo on an embedded SQLite file"
    )
    demo_parser.add_argument(
        "--example", choices=["bankaccounts", "dogschool"], default="bankaccounts"
    )
    demo_parser.add_argument(
        "--db", help="SQLite file to use (default: a temporary file, removed after)"
    )
    demo_parser.add_argument("--accounts", type=int, default=100)
    demo_parser.add_argument("--transfers", type=int, default=3000)
    demo_parser.add_argument("--seed", type=int, default=1)
    demo_parser.set_defaults(func=demo)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
