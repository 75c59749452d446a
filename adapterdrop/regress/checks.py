"""The gate's verdicts: records measured now against a :class:`~adapterdrop.regress.baseline.Baseline`.

Per baseline scenario (matched by record ``key``): one row for its deterministic figures (:class:`ExactRule`
on each of :data:`~adapterdrop.regress.baseline.DETERMINISTIC_FIELDS`; one row per figure that changed) and,
for a variant with a speedup, one row for the speedup (:class:`IntervalRule` with the baseline's minimum
effect). Records are read one run per group (:func:`adapterdrop.results.latest_runs`), so every speedup
checked comes from one run. No torch here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from adapterdrop.regress.baseline import DETERMINISTIC_FIELDS, Baseline, ScenarioBaseline
from adapterdrop.regress.rules import MISSING, OK, REGRESSION, ExactRule, IntervalRule, Outcome
from adapterdrop.results import latest_runs
from adapterdrop.scenario import Record

DETERMINISTIC = "deterministic"
SPEEDUP = "speedup"
#: the check of ``--against`` rows: absolute seconds per step, one number per process
TIME_CHECK = "step time"


@dataclass
class Row:
    """One line of the gate's table. Numbers stay numbers here; :mod:`adapterdrop.regress.table` formats.

    ``baseline``/``now`` are the figure (a speedup, or a count / bytes / FLOPs), ``baseline_ci``/``now_ci``
    the 95% intervals of speedups, ``change`` = now / baseline - 1.
    """

    scenario: str
    check: str
    verdict: str
    baseline: float | None = None
    now: float | None = None
    change: float | None = None
    baseline_ci: list[float] | None = None
    now_ci: list[float] | None = None
    detail: str = ""
    key: str = ""
    group: str = ""
    run_id: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def fails(self) -> bool:
        return Outcome(self.verdict, self.change).fails


def deterministic_rows(entry: ScenarioBaseline, record: Record) -> list[Row]:
    """One ``ok`` row when every deterministic figure equals the baseline's, else one row per change."""
    rows = []
    for name in DETERMINISTIC_FIELDS:
        outcome = ExactRule(name).compare(entry.deterministic.get(name), getattr(record, name))
        if outcome.verdict != OK:
            rows.append(
                Row(
                    entry.label,
                    name,
                    outcome.verdict,
                    entry.deterministic.get(name),
                    getattr(record, name),
                    outcome.change,
                    detail=outcome.detail,
                    key=entry.key,
                    group=record.group,
                    run_id=record.run_id,
                )
            )
    if rows:
        return rows
    check = f"{DETERMINISTIC} ({len(DETERMINISTIC_FIELDS)} figures)"
    return [Row(entry.label, check, OK, key=entry.key, group=record.group)]


def speedup_row(entry: ScenarioBaseline, record: Record, rule: IntervalRule) -> Row:
    """The speedup of ``record`` (from its own run) against the baseline's speedup and interval."""
    outcome = rule.compare(entry.speedup, entry.speedup_ci, record.speedup, record.speedup_ci)
    return Row(
        entry.label,
        SPEEDUP,
        outcome.verdict,
        entry.speedup,
        record.speedup,
        outcome.change,
        entry.speedup_ci,
        list(record.speedup_ci) if record.speedup_ci else None,
        outcome.detail,
        entry.key,
        record.group,
        record.run_id,
        notes=list(record.noise or []),
    )


def compare(baseline: Baseline, records: Sequence[Record]) -> list[Row]:
    """Every check of ``baseline`` against ``records`` (one run per group is kept), in baseline order."""
    kept, _ = latest_runs(records)
    now = {record.key: record for record in kept}
    rule = IntervalRule(baseline.min_effect)
    rows: list[Row] = []
    for entry in baseline.scenarios:
        record = now.get(entry.key)
        if record is None or record.status != "ok":
            why = "not in the results" if record is None else f"{record.status}: {record.error}"
            rows.append(Row(entry.label, "measured", MISSING, detail=why, key=entry.key))
            continue
        rows += deterministic_rows(entry, record)
        if entry.speedup is not None:
            rows.append(speedup_row(entry, record, rule))
    return rows


def suspects(rows: Sequence[Row]) -> list[Row]:
    """Speedup rows that regressed: the ones to measure again with more rounds before failing."""
    return [row for row in rows if row.check == SPEEDUP and row.verdict == REGRESSION]


def exit_status(rows: Sequence[Row]) -> int:
    """0 when no row fails, 1 when one does (a regression, a changed figure, a missing scenario)."""
    return 1 if any(row.fails for row in rows) else 0


def environment_notes(baseline: Baseline, records: Sequence[Record]) -> list[str]:
    """One line per environment fact that differs from the baseline's (torch, CPU, threads, ...)."""
    if not records:
        return []
    env = records[0].env
    notes = []
    for name in ("torch", "transformers", "device_name", "cpu", "threads", "python"):
        before, after = baseline.env.get(name), env.get(name)
        if before != after:
            notes.append(f"environment differs: {name} {before} -> {after}")
    return notes


def summary(rows: Sequence[Row]) -> dict[str, Any]:
    """Counts per verdict and the exit status."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.verdict] = counts.get(row.verdict, 0) + 1
    return {
        "verdicts": counts,
        "failing_rows": sum(row.fails for row in rows),
        "exit_status": exit_status(rows),
    }
