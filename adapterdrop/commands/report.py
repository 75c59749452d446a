"""``adapterdrop report``: plots and markdown from one or more results files; measures nothing."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from adapterdrop.commands import AddCommand

if TYPE_CHECKING:
    from adapterdrop.report import ReportSummary


def write_report(results: Sequence[Path], out: Path, *, exclude_noisy: bool) -> ReportSummary:
    """Build the report (``report`` and ``run``), print what it did not show on stderr and where it is."""
    from adapterdrop.report import build_report

    summary = build_report(results, out, exclude_noisy=exclude_noisy)
    for note in summary.notes():
        print(f"adapterdrop: {note}", file=sys.stderr)
    print(f"report written to {out}")
    return summary


def cmd_report(args: argparse.Namespace) -> int:
    write_report(args.results, args.out, exclude_noisy=args.exclude_noisy)
    return 0


def add_exclude_noisy(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--exclude-noisy",
        action="store_true",
        help="leave out records that are noisy or were measured on a loaded machine (listed, not drawn)",
    )


def register(add: AddCommand) -> None:
    report = add("report", cmd_report, "plots + markdown from results files")
    report.add_argument("results", nargs="+", type=Path, metavar="RESULTS", help="JSON Lines results files")
    report.add_argument("--out", type=Path, required=True, help="output folder")
    add_exclude_noisy(report)
