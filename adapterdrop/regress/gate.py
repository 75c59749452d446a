"""The regression gate's measuring side: measure a preset now, check it, re-measure suspects, update.

- :func:`measure_preset` measures every group of a preset through the planner and the group runner (the
  same path as ``adapterdrop sweep``), one run per group;
- :func:`run_gate` checks records against a baseline (:func:`adapterdrop.regress.checks.compare`); a
  speedup that regressed is a *suspect*: its whole group is measured again as a new run with
  :data:`REMEASURE_FACTOR` times the rounds, and only the new run's verdict counts;
- :func:`update_baseline` measures a preset ``repeats`` times and builds the baseline from them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from adapterdrop.measure.env import collect_env
from adapterdrop.measure.runner import measure_group
from adapterdrop.measure.timing import TimingConfig
from adapterdrop.plan import Group, SweepPreset, check_variants_fit, expand_groups
from adapterdrop.regress.baseline import Baseline, build_baseline
from adapterdrop.regress.checks import Row, compare, environment_notes, speedup_row, suspects
from adapterdrop.regress.rules import IntervalRule
from adapterdrop.scenario import Record

#: a suspect's group is measured again with this many times the rounds, round limit and time budget
REMEASURE_FACTOR = 3

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class GateResult:
    """The rows of the gate, notes for the reader, and every record measured (first runs and re-runs)."""

    rows: list[Row]
    notes: list[str]
    records: list[Record]


def measure_groups(groups: Sequence[Group], timing: TimingConfig, log: Log = _quiet) -> list[Record]:
    """Every group measured as one run (its baseline first); records in group order."""
    records: list[Record] = []
    for index, group in enumerate(groups, start=1):
        first = group.baseline
        log(
            f"measuring {index}/{len(groups)}: {first.comparison} {first.phase} b={first.batch_size} "
            f"s={first.seq_len} ({len(group.scenarios)} variants)"
        )
        env = collect_env(first.device, first.threads)
        records += measure_group(group.scenarios, timing, baseline=first.variant, env=env)
    return records


def measure_preset(preset: SweepPreset, log: Log = _quiet) -> list[Record]:
    """Every group of ``preset``, checked to fit its model first."""
    groups = expand_groups(preset)
    for model in preset.models:
        check_variants_fit(model, [s.variant for g in groups for s in g.scenarios if s.model == model])
    return measure_groups(groups, preset.timing, log)


def remeasure_timing(timing: TimingConfig) -> TimingConfig:
    """:data:`REMEASURE_FACTOR` times the rounds, the round limit and the time budget of ``timing``."""
    return dataclasses.replace(
        timing,
        rounds=timing.rounds * REMEASURE_FACTOR,
        max_rounds=timing.round_limit * REMEASURE_FACTOR,
        time_budget_s=timing.time_budget_s * REMEASURE_FACTOR,
    )


def run_gate(
    baseline: Baseline,
    preset: SweepPreset,
    records: Sequence[Record] | None = None,
    *,
    remeasure: bool = True,
    log: Log = _quiet,
) -> GateResult:
    """Check ``records`` (measured now from ``preset`` when None) against ``baseline``; re-measure suspects
    (unless ``remeasure`` is false)."""
    measured = list(records) if records is not None else measure_preset(preset, log)
    rows = compare(baseline, measured)
    notes = environment_notes(baseline, measured)
    suspect_rows = suspects(rows)
    if remeasure and suspect_rows:
        rows, again = _remeasure(baseline, preset, rows, suspect_rows, log)
        measured += again
    return GateResult(rows, notes, measured)


def _remeasure(
    baseline: Baseline, preset: SweepPreset, rows: list[Row], suspect_rows: list[Row], log: Log
) -> tuple[list[Row], list[Record]]:
    """Measure the suspects' groups again (a new run each) and put the new runs' speedup rows in place."""
    wanted = {row.key for row in suspect_rows}
    suspect_ids = {id(row) for row in suspect_rows}
    groups = [g for g in expand_groups(preset) if any(s.key in wanted for s in g.scenarios)]
    log(f"{len(wanted)} suspect speedup(s): measuring {len(groups)} group(s) again with more rounds")
    again = measure_groups(groups, remeasure_timing(preset.timing), log)
    fresh = {record.key: record for record in again}
    entries = baseline.by_key()
    rule = IntervalRule(baseline.min_effect)
    result = []
    for row in rows:
        record = fresh.get(row.key)
        if id(row) in suspect_ids and record is not None and record.status == "ok":
            new = speedup_row(entries[row.key], record, rule)
            first = f"{row.now:.3f} [{row.now_ci[0]:.3f}, {row.now_ci[1]:.3f}]" if row.now_ci else "-"
            rounds = record.timing.get("rounds")
            new.notes.insert(0, f"re-measured with {rounds} rounds; the first run gave {first}")
            if not new.fails:
                new.detail = f"not confirmed when re-measured (first run: {row.detail})"
            row = new
        result.append(row)
    return result, again


def update_baseline(
    preset: SweepPreset, repeats: int, log: Log = _quiet, name: str | None = None
) -> Baseline:
    """Measure ``preset`` ``repeats`` times on this tree and build its baseline (noise from the repeats).

    ``name`` is how the baseline names its preset (what ``load_preset`` takes: a name or a path; default
    the preset's name)."""
    runs = []
    for repeat in range(1, repeats + 1):
        log(f"repeat {repeat}/{repeats}")
        runs.append(measure_preset(preset, log))
    return build_baseline(name or preset.name, runs)
