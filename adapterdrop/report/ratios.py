"""Ratios from one run: pair every record with its run's baseline, say which ratios are results.

A speedup is the baseline's median time over the variant's, both from the same run (one process,
interleaved rounds). :func:`pair_runs` finds each record's baseline *in its own run* and checks that the
stored ``speedup`` and ``ideal_speedup`` follow from that baseline's median and FLOPs; a ratio that does not
(its run stored no baseline, or the numbers disagree) cannot be shown honestly: the report's view of the
record drops it (``speedup``, ``speedup_ci``, ``ideal_speedup``, ``efficiency`` become None) and it is
listed as :class:`Unpaired`.

Each record also gets its caveats: why its time or speedup is not stated as a result. Schema-2 records
carry the measurement's own verdict (``noise``: spread, interval width, a loaded machine). Schema-1
records carry none and no interval; the report applies the spread part of the same rule
(:class:`adapterdrop.measure.stats.NoiseRule`) to their stored samples.

:func:`ratio` gives the speedup of any two records of one run (the paper's figures compare, e.g., robust
AdapterDrop with `adapter`, neither being the baseline), with a paired bootstrap interval computed from
the stored rounds exactly as the measurement computes ``speedup_ci``.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapterdrop.measure.stats import NoiseRule, paired_speedup_interval
from adapterdrop.report.records import ReportRecord, group_by

#: relative difference from which a stored ratio no longer follows from the numbers it is made of
#: (float rounding only: both are computed from the same stored values)
_RTOL = 1e-9


@dataclass(frozen=True)
class Unpaired:
    """A ratio the report does not show: the record, the stored speedup and why."""

    record: ReportRecord
    speedup: float | None
    why: str


@dataclass(frozen=True)
class Ratio:
    """``reference`` median / ``subject`` median, both of one run; its interval and caveats."""

    reference: ReportRecord
    subject: ReportRecord
    value: float
    interval: tuple[float, float] | None
    caveats: tuple[str, ...]

    @property
    def is_result(self) -> bool:
        return not self.caveats


def _off(stored: float, expected: float) -> bool:
    return abs(stored - expected) > _RTOL * abs(expected)


def _schema1_caveats(record: ReportRecord, rule: NoiseRule) -> list[str]:
    reasons = rule.sample_reasons(record.variant, record.time_samples_s)
    reference = record.reference
    if reference is not None and reference is not record:
        reasons += rule.sample_reasons(f"baseline {reference.variant}", reference.time_samples_s)
    return reasons


def _caveats(record: ReportRecord, rule: NoiseRule) -> list[str]:
    """Why ``record`` is not a result: its stored verdict (schema 2), else the spread rule (schema 1)."""
    if record.schema == 1:
        return _schema1_caveats(record, rule)
    reasons = list(record.noise)
    if record.loaded and not reasons:
        reasons.append(f"machine loaded: other processes used {record.load.get('other_cpu_cores')} cores")
    return reasons


def _unpair(record: ReportRecord, why: str) -> Unpaired:
    unpaired = Unpaired(record, record.speedup, why)
    record.speedup = record.speedup_ci = record.ideal_speedup = record.efficiency = None
    return unpaired


def _pair(record: ReportRecord, baseline: ReportRecord | None) -> Unpaired | None:
    """Sets ``record.reference``; an :class:`Unpaired` when its stored ratios do not follow from it."""
    if record.speedup is None:
        return None
    if baseline is None:
        return _unpair(
            record,
            f"its run stores no measured baseline `{record.baseline}`: the speedup refers to a "
            "baseline measurement that is not in the records",
        )
    expected = baseline.time_median_s / record.time_median_s
    if _off(record.speedup, expected):
        return _unpair(
            record,
            f"stored speedup {record.speedup:.4f} is not its run's baseline median / its median "
            f"({expected:.4f})",
        )
    if record.ideal_speedup is not None and baseline.flops_step and record.flops_step:
        ideal = baseline.flops_step / record.flops_step
        if _off(record.ideal_speedup, ideal):
            return _unpair(
                record,
                f"stored ideal speedup {record.ideal_speedup:.4f} is not its run's baseline FLOPs / its "
                f"FLOPs ({ideal:.4f})",
            )
    record.reference = baseline
    return None


def pair_runs(records: list[ReportRecord], rule: NoiseRule | None = None) -> list[Unpaired]:
    """Pairs every measured record with the baseline of its own run and sets its caveats (in place).

    Returns the records whose ratios were dropped because they do not follow from their run.
    """
    rule = rule or NoiseRule()
    unpaired = []
    for members in group_by(records, "series", "run_id", "group").values():  # a ddp run holds several
        baselines = {r.variant: r for r in members if r.measured and r.is_baseline}
        for record in members:
            if not record.measured:
                continue
            dropped = _pair(record, baselines.get(record.baseline))
            if dropped is not None:
                unpaired.append(dropped)
    for record in records:
        if record.measured:
            record.caveats = _caveats(record, rule)
    return unpaired


def ratio(reference: ReportRecord, subject: ReportRecord, rule: NoiseRule | None = None) -> Ratio:
    """The speedup of ``subject`` over ``reference`` (two measured records of one run).

    Against the run's baseline it is the stored speedup and interval. Otherwise: the ratio of the two
    medians, and for schema-2 records the paired bootstrap interval over their rounds; the caveats are
    both records' plus an interval that is missing or too wide.
    """
    if reference.run_id != subject.run_id or reference.series != subject.series:
        raise ValueError(f"{reference.variant} and {subject.variant} come from different runs")
    if subject.reference is reference and subject.speedup is not None:
        interval = tuple(subject.speedup_ci) if subject.speedup_ci else None
        return Ratio(reference, subject, subject.speedup, interval, tuple(subject.caveats))
    rule = rule or NoiseRule()
    value = reference.time_median_s / subject.time_median_s
    caveats = list(dict.fromkeys(reference.caveats + subject.caveats))
    interval = None
    if subject.schema >= 2 and reference.schema >= 2:
        interval = paired_speedup_interval(reference.time_samples_s, subject.time_samples_s)
        rounds = min(len(reference.time_samples_s), len(subject.time_samples_s))
        caveats += rule.interval_reasons(value, interval, rounds)
    return Ratio(reference, subject, value, interval, tuple(caveats))
