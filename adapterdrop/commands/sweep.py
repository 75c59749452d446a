"""``adapterdrop sweep`` (a grid into a results file) and ``adapterdrop run`` (the main job)."""

from __future__ import annotations

import argparse
from pathlib import Path

from adapterdrop.commands import AddCommand
from adapterdrop.commands.options import add_grid_options, add_machine_options, preset_from_args, summary


def cmd_sweep(args: argparse.Namespace) -> int:
    from adapterdrop.sweep import run_sweep

    preset = preset_from_args(args)
    results = Path(args.results or f"results/{preset.name}.jsonl")
    records = run_sweep(preset, results, progress=not args.no_progress)
    print(summary(records, results))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from adapterdrop.plan import load_preset
    from adapterdrop.report import build_report
    from adapterdrop.sweep import run_sweep

    preset = load_preset(args.preset)
    results = Path(args.results or f"results/{preset.name}.jsonl")
    out = Path(args.out or f"reports/{preset.name}")
    records = run_sweep(preset, results, progress=not args.no_progress)
    print(summary(records, results))
    build_report([results], out)
    print(f"report written to {out}")
    return 0


def register(add: AddCommand) -> None:
    sweep = add(
        "sweep",
        cmd_sweep,
        "measure a grid (a preset or flags) into an append-only results file; a rerun skips what is stored",
    )
    sweep.add_argument("--preset", help="preset name (bench/presets/NAME.toml) or path, e.g. quick, paper")
    sweep.add_argument("--results", type=Path, help="JSON Lines results file (default results/PRESET.jsonl)")
    add_grid_options(sweep, single=False)
    add_machine_options(sweep, sweep=True)
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    run = add("run", cmd_run, "sweep a preset, then write its report (default: quick)")
    run.add_argument("--preset", default="quick", help="preset name or path (default quick)")
    run.add_argument("--results", type=Path, help="results file (default results/PRESET.jsonl)")
    run.add_argument("--out", type=Path, help="report folder (default reports/PRESET)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
