"""``adapterdrop report``: plots and markdown from one or more results files; measures nothing."""

from __future__ import annotations

import argparse
from pathlib import Path

from adapterdrop.commands import AddCommand


def cmd_report(args: argparse.Namespace) -> int:
    from adapterdrop.report import build_report
    from adapterdrop.results import load_records

    for path in args.results:
        load_records(path)  # a clear error for a missing or corrupt file before the report starts
    build_report(args.results, args.out)
    print(f"report written to {args.out}")
    return 0


def register(add: AddCommand) -> None:
    report = add("report", cmd_report, "plots + markdown from results files")
    report.add_argument("results", nargs="+", type=Path, metavar="RESULTS", help="JSON Lines results files")
    report.add_argument("--out", type=Path, required=True, help="output folder")
