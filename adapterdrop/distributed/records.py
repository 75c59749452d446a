"""Records of a data-parallel run: one per (world size, unused-parameter mode, variant), all with one run id.

Every number is made from the samples of this one launch (rounds paired in time across variants and world
sizes; see :mod:`adapterdrop.distributed.timing`):

- ``time_*``: seconds per step (the slowest rank per sample); ``throughput_samples_s`` = world size x
  per-process batch / median, the samples the whole group trains per second;
- ``speedup`` (+ ``speedup_ci``): the baseline's median over this one's at the same world size and mode;
  ``ideal_speedup`` and ``efficiency`` from the per-rank step FLOPs, as in a single-process group;
- ``scaling_efficiency`` (+ ``_ci``): throughput at w / (w x throughput at 1) of the same variant and mode,
  which with a fixed per-process batch is median(step at 1) / median(step at w); 1 is perfect scaling,
  and the step-time ratio against world size 1 is its inverse;
- ``achieved_flops_s`` and ``mfu`` (+ ``peak_flops_s``, ``peak_flops_source``): one process's step FLOPs
  over the median step time, against one device's peak (each process runs on its own device), as in a
  single-process record;
- ``comm_bytes_per_step``: what the communication hook counted (mean over a stochastic variant's equally
  likely draws); ``ddp.expected_bytes_per_step`` is the reduced parameters' numel x element size and
  ``ddp.ddp_bucket_bytes`` DDP's own buckets, to check it against;
- ``comm_time_s``: median of the step's buckets all-reduced alone; ``comm_exposed_s``: median step minus
  median step without communication (the part of the communication the step waits for);
  ``comm_overlap`` = 1 - exposed / comm_time, clipped to [0, 1] (the rest ran behind backward; None at
  world size 1, where nothing travels between processes).

A run whose gradient check failed is recorded as ``error``: a wrong step's time is no result.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from adapterdrop.distributed.checks import GradientCheck
from adapterdrop.distributed.intervals import exposed, overlap, paired_interval
from adapterdrop.distributed.wrap import Draw, StepCount
from adapterdrop.measure.load import describe_load
from adapterdrop.measure.stats import (
    NoiseRule,
    paired_speedup_interval,
    ratio_of_medians,
    relative_half_width,
)
from adapterdrop.measure.timing import TimingConfig
from adapterdrop.measure.utilization import Peak, utilization_fields
from adapterdrop.scenario import Record, Scenario

TIMER = "adapterdrop.measure.timing.sample on every rank; a sample is the slowest rank's"


@dataclass
class Measured:
    """What one scenario's data-parallel step produced on this launch (rank 0's view)."""

    scenario: Scenario
    facts: dict[str, Any]
    counts: dict[Draw, StepCount]
    check: GradientCheck
    wrappers: int
    samples: dict[str, list[float]]
    numbers: dict[str, int]

    @property
    def cell(self) -> tuple[int, str, str]:
        return self.scenario.world_size, self.scenario.ddp_unused, self.scenario.variant


def median_iqr(samples: Sequence[float]) -> tuple[float, float]:
    """Median and inter-quartile range (linear interpolation) of ``samples``, seconds."""
    q1, q3 = np.percentile(np.asarray(samples, dtype=float), [25, 75])
    return statistics.median(samples), float(q3 - q1)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _comm_fields(counts: dict[Draw, StepCount], wrappers: int) -> dict[str, Any]:
    """Bytes and buckets per step (means over the draws), DDP's buckets (one wrapper), and per draw."""
    draws = list(counts.values())
    fields: dict[str, Any] = {
        "expected_bytes_per_step": round(_mean([c.expected_bytes for c in draws])),
        "buckets_per_step": _mean([len(c.buckets) for c in draws]),
        "ddp_bucket_bytes": draws[0].ddp_bucket_bytes if wrappers == 1 else None,
        "bucket_dtypes": sorted({str(dtype).removeprefix("torch.") for c in draws for _, dtype in c.buckets}),
    }
    if len(draws) > 1:
        fields["bytes_by_draw"] = {str(value): c.bytes for value, c in counts.items()}
        fields["expected_bytes_by_draw"] = {str(value): c.expected_bytes for value, c in counts.items()}
        fields["ddp_bucket_bytes_by_draw"] = {str(value): c.ddp_bucket_bytes for value, c in counts.items()}
    return fields


def _timing_fields(measured: Measured, timing: TimingConfig) -> dict[str, Any]:
    step, silent, comm = (measured.samples[kind] for kind in ("step", "silent", "comm"))
    median, iqr = median_iqr(step)
    silent_median, silent_iqr = median_iqr(silent)
    comm_median, comm_iqr = median_iqr(comm)
    scenario = measured.scenario
    global_batch = scenario.world_size * scenario.batch_size
    exposed_ci = paired_interval(exposed, [step, silent])
    overlap_ci = paired_interval(overlap, [step, silent, comm]) if scenario.world_size > 1 else None
    return {
        "time_median_s": median,
        "time_iqr_s": iqr,
        "time_samples_s": list(step),
        "throughput_samples_s": global_batch / median,
        "throughput_tokens_s": global_batch * scenario.seq_len / median,
        "comm_time_s": comm_median,
        "comm_exposed_s": median - silent_median,
        "comm_overlap": None
        if scenario.world_size == 1
        else float(overlap(median, silent_median, comm_median)),
        "ddp_timing": {
            "step_without_comm_median_s": silent_median,
            "step_without_comm_iqr_s": silent_iqr,
            "step_without_comm_samples_s": list(silent),
            "comm_iqr_s": comm_iqr,
            "comm_samples_s": list(comm),
            "comm_exposed_ci": list(exposed_ci) if exposed_ci else None,
            "comm_overlap_ci": list(overlap_ci) if overlap_ci else None,
        },
        "timing": {
            "rounds": len(step),
            "calls_per_sample": measured.numbers["step"],
            "steps_per_call": len(measured.counts),  # a cycle over the draws (one count per draw)
            "calls_per_sample_without_comm": measured.numbers["silent"],
            "calls_per_sample_comm": measured.numbers["comm"],
            "min_sample_time_s": timing.min_sample_time_s,
            "warmup_steps": timing.warmup_steps,
            "timer": TIMER,
        },
    }


def build_records(
    measured: Sequence[Measured],
    *,
    timing: TimingConfig,
    run_id: str,
    created_at: str,
    env: dict[str, Any],
    load: dict[str, Any],
    launch: dict[str, Any],
    extra_noise: Sequence[str] = (),
    rule: NoiseRule | None = None,
    peak: Peak | None = None,
) -> list[Record]:
    """One record per measured scenario, in order; ``launch`` (nodes, ranks, hosts) goes into ``ddp``;
    ``peak`` is one device's (None: no utilisation fields)."""
    rule = rule or NoiseRule()
    by_cell = {m.cell: m for m in measured}
    loaded = [describe_load(load)] if load.get("loaded") else []
    records = []
    for m in measured:
        scenario = m.scenario
        ddp: dict[str, Any] = {
            **launch,
            "wrappers": m.wrappers,
            "find_unused_parameters": scenario.ddp_unused == "find",
            **_comm_fields(m.counts, m.wrappers),
            **m.check.fields(),
        }
        values: dict[str, Any] = {
            **m.facts,
            "comm_bytes_per_step": round(_mean([c.bytes for c in m.counts.values()])),
            "ddp": ddp,
        }
        if not m.check.agree:
            values["error"] = (
                "data-parallel gradients are wrong: ranks differ by "
                f"{m.check.max_rank_difference:.2g}, the mean of the ranks' gradients by "
                f"{m.check.max_mean_difference:.2g} (relative), unused parameters "
                f"{'as in one process' if m.check.unused_match else 'got gradients or lost them'}"
            )
            records.append(_record(scenario, "error", values, run_id, created_at, env, load))
            continue
        timed = _timing_fields(m, timing)
        ddp.update(timed.pop("ddp_timing"))
        values.update(timed)
        if peak is not None:
            values.update(utilization_fields(m.facts.get("flops_step"), values.get("time_median_s"), peak))
        step = m.samples["step"]
        reasons = rule.sample_reasons(scenario.variant, step) + loaded + list(extra_noise)
        baseline = by_cell.get((scenario.world_size, scenario.ddp_unused, scenario.baseline))
        if baseline is not None and baseline.check.agree:
            base = baseline.samples["step"]
            values["speedup"] = ratio_of_medians(base, step)
            if baseline is m:
                values["speedup_ci"] = [1.0, 1.0]
            else:
                interval = paired_speedup_interval(base, step)
                values["speedup_ci"] = list(interval) if interval else None
                reasons += rule.sample_reasons(f"baseline {scenario.baseline}", base)
                reasons += rule.interval_reasons(values["speedup"], interval, len(step))
            base_flops, flops = baseline.facts.get("flops_step"), m.facts.get("flops_step")
            if base_flops and flops:
                values["ideal_speedup"] = base_flops / flops
                values["efficiency"] = values["speedup"] / values["ideal_speedup"]
        single = by_cell.get((1, scenario.ddp_unused, scenario.variant))
        if single is not None and single.check.agree:
            values["scaling_efficiency"] = ratio_of_medians(single.samples["step"], step)
            if single is m:
                values["scaling_efficiency_ci"] = [1.0, 1.0]
            else:
                interval = paired_speedup_interval(single.samples["step"], step)
                values["scaling_efficiency_ci"] = list(interval) if interval else None
                reasons += _scaling_reasons(values["scaling_efficiency"], interval, rule)
        values["noise"] = reasons
        values["noisy"] = bool(reasons)
        records.append(_record(scenario, "ok", values, run_id, created_at, env, load))
    return records


def _scaling_reasons(efficiency: float, interval: tuple[float, float] | None, rule: NoiseRule) -> list[str]:
    """A reason when the scaling efficiency has no interval or a wider one than the rule allows."""
    if interval is None:
        return ["scaling efficiency: too few rounds for an interval"]
    width = relative_half_width(efficiency, interval)
    if width <= rule.ci_half_width_threshold:
        return []
    return [
        f"scaling efficiency 95% interval reaches {width:.1%} from it (> {rule.ci_half_width_threshold:.0%})"
    ]


def _record(
    scenario: Scenario,
    status: str,
    values: dict[str, Any],
    run_id: str,
    created_at: str,
    env: dict[str, Any],
    load: dict[str, Any],
) -> Record:
    return Record.for_scenario(
        scenario, status, run_id=run_id, created_at=created_at, env=env, load=load, **values
    )
