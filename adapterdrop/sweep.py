"""Sweeps: planned groups (:mod:`adapterdrop.plan`) -> interleaved measurement -> records in a results file.

Records are appended after each group, so a rerun skips every group that is already stored. A group
with any scenario missing (never measured, or stored as ``error``) is measured again *whole*, as one new
run, and every record of that run is appended (the baseline too): a speedup always refers to a baseline
measured, and stored, in the same run. Readers take, per group, the latest run (see
:func:`adapterdrop.results.latest_runs`). After an out-of-memory result, the larger batch sizes of that
variant's series are recorded as skipped, and so is a scenario whose model cannot fit the machine for its
workload (:mod:`adapterdrop.families.fit`: refused before it is built, the figures in its ``error``).

A sweep ends by printing its duty cycle on stderr: seconds of timed steps (``timing.timed_s`` summed over
the records it measured) over its wall seconds (:func:`duty_cycle`).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from adapterdrop.families.fit import fit_problem
from adapterdrop.measure.env import collect_env
from adapterdrop.measure.load import describe_load
from adapterdrop.measure.runner import measure_group, new_run_id, skipped_record
from adapterdrop.plan import SweepPreset, check_variants_fit, expand_groups, variant_phases
from adapterdrop.results import append_records, check_writable, finished_keys, load_records
from adapterdrop.scenario import Record, Scenario

# ---------------------------------------------------------------------------------------------- running


def _series(scenario: Scenario) -> Scenario:
    """The scenario with its batch size normalised: larger batches of one series are skipped after OOM."""
    return dataclasses.replace(scenario, batch_size=1)


def run_sweep(
    preset: SweepPreset,
    results_path: Path | str,
    *,
    devices: Sequence[str] | None = None,
    progress: bool = False,
) -> list[Record]:
    """Measure every group of ``preset`` not yet wholly stored in ``results_path``; return the new records.

    ``devices`` overrides the preset's devices. ``progress`` shows a tqdm bar on stderr. A group measured
    while other processes loaded the machine is announced on stderr (its records say so too). A results
    file that cannot be written is an error before anything is measured.
    """
    started = time.perf_counter()
    results_path = Path(results_path)
    check_writable(results_path)
    stored = load_records(results_path, missing_ok=True)
    done = finished_keys(stored)
    oom_at: dict[Scenario, int] = {}  # series -> smallest batch size that ran out of memory
    for record in stored:
        if record.status == "oom":
            series = _series(record.scenario)
            oom_at[series] = min(record.batch_size, oom_at.get(series, record.batch_size))
    groups = expand_groups(preset, devices)
    for model in preset.models:
        check_variants_fit(model, variant_phases(s for g in groups for s in g.scenarios if s.model == model))
    total = sum(len(group.scenarios) for group in groups)
    written: list[Record] = []
    envs: dict[tuple[str, int], dict[str, Any]] = {}
    with tqdm(total=total, disable=not progress, file=sys.stderr, unit="scenario", dynamic_ncols=True) as bar:
        for group in groups:
            missing = [s for s in group.scenarios if s.key not in done]
            if not missing:
                bar.update(len(group.scenarios))
                continue
            first = group.baseline
            bar.set_description(
                f"{first.comparison} {first.phase} b={first.batch_size} s={first.seq_len} {first.device}"
            )
            env_key = (first.device, first.threads)
            if env_key not in envs:
                envs[env_key] = collect_env(first.device, first.threads)
            env = envs[env_key]
            run_id = new_run_id()
            records = []
            to_measure = []
            for scenario in group.scenarios:
                limit = oom_at.get(_series(scenario))
                if limit is not None and scenario.batch_size > limit:
                    why = f"batch size {limit} ran out of memory"
                    records.append(skipped_record(scenario, why, env, run_id))
                elif (problem := fit_problem(scenario)) is not None:  # refused before it is built
                    records.append(skipped_record(scenario, problem, env, run_id))
                else:
                    to_measure.append(scenario)
            if any(s in missing for s in to_measure):
                measured = measure_group(
                    to_measure, preset.timing, baseline=first.variant, env=env, run_id=run_id
                )
                records.extend(measured)
                if measured[0].load.get("loaded"):
                    where = f"{first.comparison} {first.phase} b={first.batch_size} s={first.seq_len}"
                    warning = f"adapterdrop: warning: {where}: {describe_load(measured[0].load)}"
                    bar.write(warning, file=sys.stderr)
            append_records(results_path, records)
            for record in records:
                done.add(record.key)
                if record.status == "oom":
                    oom_at.setdefault(_series(record.scenario), record.batch_size)
            written.extend(records)
            bar.update(len(group.scenarios))
    if any(r.status == "ok" for r in written):
        print(duty_cycle(written, time.perf_counter() - started), file=sys.stderr)
    return written


def timed_seconds(records: Sequence[Record]) -> float:
    """Seconds of timed steps the ``ok`` records ran (their ``timing.timed_s``; older records count 0)."""
    return sum(r.timing.get("timed_s", 0.0) for r in records if r.status == "ok")


def duty_cycle(records: Sequence[Record], wall_s: float) -> str:
    """One line: seconds of timed steps of ``records`` over ``wall_s`` wall seconds, and their ratio."""
    timed = timed_seconds(records)
    share = timed / wall_s if wall_s > 0 else 0.0
    return f"duty cycle: {timed:.1f} s of timed steps in {wall_s:.1f} s wall ({share:.0%})"
