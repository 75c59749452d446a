"""``adapterdrop regress``: the performance regression gate (see docs/regress.md).

- ``adapterdrop regress [RESULTS.jsonl ...]`` checks results (measured now from the baseline's preset
  when none are given) against ``--baseline`` (default ``profiles/baselines/ci.json``);
- ``adapterdrop regress --update --preset ci`` measures the preset ``--repeats`` times and writes the
  baseline;
- ``adapterdrop regress --against REV`` compares absolute step times of revision REV and the working tree,
  measured in alternating processes.

Prints the table, writes it to ``--out`` as ``regress.json`` and ``regress.md`` (or ``against.*``; the
markdown is also appended to ``$GITHUB_STEP_SUMMARY`` when that is set) and exits 0 (pass), 1 (a
regression, a changed deterministic figure or a scenario not measured) or 2 (a usage error, one line).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from adapterdrop.commands import AddCommand
from adapterdrop.commands.options import positive_int

DEFAULT_BASELINE = Path("profiles/baselines/ci.json")
DEFAULT_OUT = Path("results/regress")
USAGE_ERROR = 2


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _check_usage(args: argparse.Namespace) -> None:
    from adapterdrop.errors import AdapterDropError

    if args.update and args.against:
        raise AdapterDropError("--update and --against cannot be combined")
    if args.results and (args.update or args.against):
        raise AdapterDropError(
            "results files are only checked against a baseline, not with --update/--against"
        )


def _write(out: Path, stem: str, text: str, markdown: str, data: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(markdown)
    (out / f"{stem}.json").write_text(data)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a") as handle:
            handle.write(markdown)
    print(text)
    print(f"written to {out / stem}.md and {out / stem}.json", file=sys.stderr)


def _update(args: argparse.Namespace) -> int:
    from adapterdrop.plan import load_preset
    from adapterdrop.regress.baseline import save_baseline
    from adapterdrop.regress.gate import update_baseline

    preset = load_preset(args.preset or "ci")
    path = args.baseline or Path(f"profiles/baselines/{preset.name}.json")
    baseline = update_baseline(preset, args.repeats, _log, name=args.preset or "ci")
    save_baseline(baseline, path)
    noise = baseline.noise
    print(
        f"baseline written to {path}: {len(baseline.scenarios)} scenarios, {args.repeats} repeats; minimum "
        f"effect {baseline.min_effect:.1%} = {noise['safety']:g} x max(largest separation between repeats "
        f"{noise['max_separation']:.1%}, median interval half-width {noise['median_half_width']:.1%})"
    )
    if noise["loaded_records"]:
        _log(
            f"warning: {noise['loaded_records']} record(s) were measured while other processes were busy; "
            "the minimum effect reflects that load: refresh the baseline on an idle machine"
        )
    return 0


def _gate(args: argparse.Namespace) -> int:
    from adapterdrop.plan import load_preset
    from adapterdrop.regress.baseline import load_baseline
    from adapterdrop.regress.checks import exit_status
    from adapterdrop.regress.gate import run_gate
    from adapterdrop.regress.table import format_markdown, format_text, to_json
    from adapterdrop.results import append_records, load_records

    path = args.baseline or DEFAULT_BASELINE
    baseline = load_baseline(path)
    preset = load_preset(args.preset or baseline.preset)
    records = [r for results in args.results for r in load_records(results)] if args.results else None
    result = run_gate(baseline, preset, records, remeasure=not args.no_remeasure, log=_log)
    if records is None or len(result.records) > len(records):
        measured = args.out / "records.jsonl"
        measured.unlink(missing_ok=True)
        append_records(measured, result.records[len(records or []) :])
    title = f"adapterdrop regress against {path}"
    _write(
        args.out,
        "regress",
        format_text(result.rows, baseline.min_effect, result.notes),
        format_markdown(result.rows, baseline.min_effect, result.notes, title),
        to_json(
            result.rows, {"baseline": str(path), "min_effect": baseline.min_effect, "notes": result.notes}
        ),
    )
    return exit_status(result.rows)


def _against(args: argparse.Namespace) -> int:
    from adapterdrop.plan import expand_groups, load_preset
    from adapterdrop.regress.ab import ABSettings, run_against
    from adapterdrop.regress.baseline import load_baseline, scenario_label
    from adapterdrop.regress.checks import exit_status
    from adapterdrop.regress.table import format_markdown, format_text, to_json
    from adapterdrop.scenario import Record

    name = args.preset
    if name is None:
        path = args.baseline or DEFAULT_BASELINE
        name = load_baseline(path).preset if path.is_file() else "ci"
    preset = load_preset(name)
    scenarios = [s for group in expand_groups(preset) for s in group.scenarios]
    labels = {s.key: scenario_label(Record.for_scenario(s, "ok")) for s in scenarios}
    settings = ABSettings(
        processes=args.processes, samples=args.samples, python_a=args.python_a or sys.executable
    )
    result = run_against(args.against, scenarios, labels, settings, _log)
    title = f"adapterdrop regress --against {args.against}"
    _write(
        args.out,
        "against",
        format_text(result.rows, None, result.notes),
        format_markdown(result.rows, None, result.notes, title),
        to_json(result.rows, {"revision": result.revision, "numbers": result.numbers, "notes": result.notes}),
    )
    return exit_status(result.rows)


def cmd_regress(args: argparse.Namespace) -> int:
    try:
        _check_usage(args)
        if args.update:
            return _update(args)
        if args.against:
            return _against(args)
        return _gate(args)
    except (ValueError, OSError) as exc:  # bad input: one line, exit 2
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"adapterdrop: error: {message}", file=sys.stderr)
        return USAGE_ERROR


def register(add: AddCommand) -> None:
    regress = add(
        "regress",
        cmd_regress,
        "performance regression gate: results (or a measurement now) against a stored baseline; "
        "exit 0 pass, 1 regression, 2 usage error",
    )
    regress.add_argument(
        "results",
        nargs="*",
        type=Path,
        metavar="RESULTS",
        help="JSON Lines results to check (default: measure now)",
    )
    regress.add_argument(
        "--baseline",
        type=Path,
        help=f"baseline file (default {DEFAULT_BASELINE}; with --update: profiles/baselines/PRESET.json)",
    )
    regress.add_argument("--preset", help="preset to measure (default: the baseline's; with --update: ci)")
    regress.add_argument("--update", action="store_true", help="measure the preset and write the baseline")
    regress.add_argument(
        "--repeats",
        type=positive_int,
        default=3,
        help="with --update: measurements the noise is derived from (default 3)",
    )
    regress.add_argument(
        "--no-remeasure", action="store_true", help="fail a suspect speedup without measuring it again"
    )
    regress.add_argument(
        "--against", metavar="REV", help="compare absolute step times with git revision REV (A/B)"
    )
    regress.add_argument(
        "--processes", type=positive_int, default=6, help="with --against: processes per side (default 6)"
    )
    regress.add_argument(
        "--samples",
        type=positive_int,
        default=3,
        help="with --against: samples per scenario and process (default 3)",
    )
    regress.add_argument(
        "--python-a",
        metavar="PYTHON",
        help="with --against: interpreter of side A (another torch; default this one)",
    )
    regress.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"where the table goes (default {DEFAULT_OUT})"
    )
