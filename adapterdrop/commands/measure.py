"""``adapterdrop measure``: one scenario (optionally against a baseline), measured now, printed as a table.

The ``--results`` file is checked for writing before anything is measured; a measurement made while other
processes loaded the machine is announced on stderr, as a sweep does. Exit 1 when a scenario ended in
``error`` (``oom`` and ``skipped`` are outcomes), as for a sweep.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adapterdrop.commands import AddCommand
from adapterdrop.commands.options import (
    add_grid_options,
    add_machine_options,
    check_no_errors,
    with_machine_options,
)


def cmd_measure(args: argparse.Namespace) -> int:
    from adapterdrop.measure.env import collect_env
    from adapterdrop.measure.load import describe_load
    from adapterdrop.measure.runner import measure_group
    from adapterdrop.plan import (
        check_groups_fit,
        check_variants_fit,
        expand_groups,
        preset_from_flags,
        variant_phases,
    )
    from adapterdrop.results import append_records, check_writable

    preset = preset_from_flags(
        [args.variant],
        baseline=args.baseline,
        phases=[args.phase],
        batch_sizes=[args.batch_size],
        seq_lens=[args.seq_len],
        comparison="measure",
    )
    preset = with_machine_options(preset, args)
    groups = expand_groups(preset)
    check_variants_fit(preset.models[0], variant_phases(s for g in groups for s in g.scenarios))
    check_groups_fit(groups)
    if args.results:
        check_writable(args.results)
    records = []
    for group in groups:
        first = group.baseline
        env = collect_env(first.device, first.threads)
        measured = measure_group(group.scenarios, preset.timing, baseline=first.variant, env=env)
        if measured[0].load.get("loaded"):
            where = f"{first.phase} b={first.batch_size} s={first.seq_len} {first.device}"
            print(f"adapterdrop: warning: {where}: {describe_load(measured[0].load)}", file=sys.stderr)
        records += measured
    if args.results:
        append_records(args.results, records)
    if args.json:
        for record in records:
            print(json.dumps(record.to_dict()))
    else:
        print(format_table(records))
    check_no_errors(records, args.results or "the records printed above")
    return 0


def _fmt(value: Any, scale: float = 1.0, digits: int = 2) -> str:
    return "-" if value is None else f"{value * scale:.{digits}f}"


def _interval(record: Any) -> str:
    if record.speedup_ci is None:
        return "-"
    low, high = record.speedup_ci
    return f"[{low:.3f}, {high:.3f}]"


def format_table(records: Sequence[Any]) -> str:
    """Records as an aligned text table (ms, samples/s, GFLOPs, MiB); a noisy record's verdict names why,
    in numbered notes after a blank line under the table."""
    header = (
        "variant",
        "phase",
        "device",
        "status",
        "median ms",
        "IQR ms",
        "samples/s",
        "GFLOPs/step",
        "speedup",
        "95% interval",
        "ideal",
        "efficiency",
        "peak MiB",
        "trainable",
        "verdict",
    )
    rows = [header]
    notes: list[str] = []
    for r in records:
        verdict = "-"
        if r.status == "ok":
            verdict = "result"
            if r.noisy:
                notes.append(f"[{len(notes) + 1}] {r.variant}: " + "; ".join(r.noise))
                verdict = f"noisy [{len(notes)}]"
        rows.append(
            (
                r.variant,
                r.phase,
                r.device,
                r.status if r.status == "ok" else f"{r.status}: {r.error}",
                _fmt(r.time_median_s, 1e3, 3),
                _fmt(r.time_iqr_s, 1e3, 3),
                _fmt(r.throughput_samples_s, digits=1),
                _fmt(r.flops_step, 1e-9, 3),
                _fmt(r.speedup, digits=3),
                _interval(r),
                _fmt(r.ideal_speedup, digits=3),
                _fmt(r.efficiency, digits=3),
                _fmt(r.peak_memory_bytes, 1 / 2**20, 1),
                "-" if r.params_trainable is None else f"{r.params_trainable:,}",
                verdict,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    table = "\n".join(line.rstrip() for line in lines)
    return "\n\n".join([table, "\n".join(notes)]) if notes else table


def register(add: AddCommand) -> None:
    measure = add(
        "measure", cmd_measure, "measure one scenario (optionally against a baseline); print a table"
    )
    add_grid_options(measure, single=True)
    add_machine_options(measure, sweep=False)
    measure.add_argument("--results", type=Path, help="also append the records to this results file")
    measure.add_argument("--json", action="store_true", help="print records as JSON lines")
