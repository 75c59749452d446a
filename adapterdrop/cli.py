"""The ``adapterdrop`` console script: a thin front door over the command modules in
:mod:`adapterdrop.commands` (sweep, run, measure, env, variants, report, ...).

Bad input ends with one line ``adapterdrop: error: ...`` on stderr and exit status 2 (usage, a variant
name or option that does not parse or fit the model) or 1 (another value the library rejects, an
unreadable file), never with a traceback; a filesystem error is a plain
sentence, not an errno. The toolkit's own warnings (a torn last line in a results file) are one line
``adapterdrop: warning: ...`` each, printed once however often the file is read.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import NoReturn, TextIO

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


def _error_line(exc: Exception) -> str:
    """The first line of an error's message; an OSError as ``path: reason`` without its errno."""
    if isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror[:1].lower() + exc.strerror[1:]
        return f"{exc.filename}: {reason}" if exc.filename else reason
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _PlainWarnings:
    """``warnings.showwarning`` for one command: the toolkit's own warnings as one line
    ``adapterdrop: warning: ...``, each message once however often it is raised; others as Python prints
    them."""

    def __init__(self, fallback: Callable[..., None]) -> None:
        self.fallback = fallback
        self.shown: set[str] = set()

    def __call__(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if not category.__module__.startswith(f"{__package__}."):
            self.fallback(message, category, filename, lineno, file, line)
        elif str(message) not in self.shown:
            self.shown.add(str(message))
            print(f"{PROG}: warning: {message}", file=file or sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    from adapterdrop.errors import VariantError, WorkloadError
    from adapterdrop.results import TornLineWarning

    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("always", TornLineWarning)  # _PlainWarnings shows each message once
        warnings.showwarning = _PlainWarnings(warnings.showwarning)
        try:
            return args.func(args)
        except (VariantError, WorkloadError) as exc:  # a bad variant, a workload the model lacks: usage
            print(f"{PROG}: error: {_error_line(exc)}", file=sys.stderr)
            return 2
        except (ValueError, OSError) as exc:  # AdapterDropError and the library's other ValueErrors
            print(f"{PROG}: error: {_error_line(exc)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted (every finished group is saved)", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
