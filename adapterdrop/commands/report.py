"""``adapterdrop report``: plots and markdown from one or more results files; measures nothing."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adapterdrop.commands import AddCommand


def cmd_report(args: argparse.Namespace) -> int:
    from adapterdrop.report import build_report

    summary = build_report(args.results, args.out, exclude_noisy=args.exclude_noisy)
    for note in summary.notes():
        print(f"adapterdrop: {note}", file=sys.stderr)
    print(f"report written to {args.out}")
    return 0


def register(add: AddCommand) -> None:
    report = add("report", cmd_report, "plots + markdown from results files")
    report.add_argument("results", nargs="+", type=Path, metavar="RESULTS", help="JSON Lines results files")
    report.add_argument("--out", type=Path, required=True, help="output folder")
    report.add_argument(
        "--exclude-noisy",
        action="store_true",
        help="leave out records that are noisy or were measured on a loaded machine (listed, not drawn)",
    )
