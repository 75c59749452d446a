"""``adapterdrop sweep`` (a grid into a results file) and ``adapterdrop run`` (the main job).

Both write under ``results/`` by default (ignored by git), so the main job never touches a committed file:
``run`` puts ``results/PRESET.jsonl`` and the report in ``results/PRESET/``. Both exit 1, after writing
every record (and ``run`` its report), when a scenario ended in ``error``; ``oom`` and ``skipped`` are
outcomes and exit 0.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from adapterdrop.commands import AddCommand
from adapterdrop.commands.options import (
    RESULTS_DIR,
    add_grid_options,
    add_machine_options,
    add_model_option,
    check_no_errors,
    preset_from_args,
    results_path,
    summary,
    with_machine_options,
)
from adapterdrop.commands.report import add_exclude_noisy, write_report


def cmd_sweep(args: argparse.Namespace) -> int:
    import dataclasses

    from adapterdrop.plan import parse_shard
    from adapterdrop.sweep import run_sweep

    preset = preset_from_args(args)
    results = args.results or results_path(preset.name)
    if args.shard:  # the I-th of K parts of the grid (whole groups), into a file of its own
        index, count = parse_shard(args.shard)
        preset = dataclasses.replace(preset, shard=(index, count))
        results = args.results or results.with_suffix(f".shard-{index}-of-{count}.jsonl")
    records = run_sweep(preset, results, progress=not args.no_progress)
    print(summary(records, results))
    check_no_errors(records, results)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Sweep, report, then print the headline: the paper's figures beside the measured ones, and where the
    report and plots are."""
    from adapterdrop.plan import load_preset
    from adapterdrop.report.headline import headline
    from adapterdrop.sweep import run_sweep

    preset = with_machine_options(load_preset(args.preset), args)
    results = args.results or results_path(preset.name)
    out = args.out or RESULTS_DIR / preset.name
    records = run_sweep(preset, results, progress=not args.no_progress)
    print(summary(records, results))
    report = write_report([results], out, exclude_noisy=args.exclude_noisy)
    print(f"\n{headline(report)}")
    check_no_errors(records, results)
    return 0


def register(add: AddCommand) -> None:
    sweep = add(
        "sweep",
        cmd_sweep,
        "measure a grid (a preset or flags) into an append-only results file; a rerun skips what is stored",
    )
    sweep.add_argument("--preset", help="preset name (bench/presets/NAME.toml) or path, e.g. quick, paper")
    sweep.add_argument(
        "--results",
        type=Path,
        help=f"JSON Lines results file (default {RESULTS_DIR}/PRESET.jsonl; "
        f"{results_path('cli')} for a sweep from --variant flags)",
    )
    add_grid_options(sweep, single=False)
    add_machine_options(sweep, sweep=True)
    sweep.add_argument(
        "--shard",
        metavar="I/K",
        help="measure only the I-th (0-based) of K disjoint parts of the grid (whole groups), into "
        f"{RESULTS_DIR}/PRESET.shard-I-of-K.jsonl by default: for a SLURM job array or a Kubernetes Indexed "
        "Job; 'adapterdrop report' merges the parts (docs/distributed.md)",
    )
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    run = add(
        "run",
        cmd_run,
        f"the main job: sweep a preset (default quick) into {RESULTS_DIR}/PRESET.jsonl, then write its "
        f"report into {RESULTS_DIR}/PRESET/",
    )
    run.add_argument("--preset", default="quick", help="preset name or path (default quick)")
    run.add_argument("--results", type=Path, help=f"results file (default {RESULTS_DIR}/PRESET.jsonl)")
    run.add_argument("--out", type=Path, help=f"report folder (default {RESULTS_DIR}/PRESET/)")
    add_model_option(run, "the preset's")
    add_machine_options(run, sweep=True)
    add_exclude_noisy(run)
    run.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
