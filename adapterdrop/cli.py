"""The ``adapterdrop`` console script: a thin front door over the command modules in
:mod:`adapterdrop.commands` (sweep, run, measure, env, variants, report, ...).

Bad input ends with one line ``adapterdrop: error: ...`` on stderr and exit status 2 (usage) or 1 (a
value the library rejects, an unreadable file), never with a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from adapterdrop.commands import COMMANDS

PROG = "adapterdrop"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line: ``adapterdrop: error: <message>``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(
        prog=PROG, description="Benchmark adapter variants of transformer encoders (AdapterDrop)."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(func=func)
        return sub

    for name in COMMANDS:
        importlib.import_module(f"adapterdrop.commands.{name}").register(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:  # AdapterDropError and the library's other ValueErrors
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted (every finished group is saved)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
