"""Measure one comparison group: every variant of one cell, interleaved, in this process, as one run.

A group shares one frozen encoder and one input batch (:func:`adapterdrop.measure.prepare.group_context`).
Each variant is prepared (:func:`~adapterdrop.measure.prepare.prepare_step`), its FLOPs are counted
(:func:`~adapterdrop.measure.flops.step_flops`), it runs its warm-up steps, each timed, and its memory is
probed on the step after them (:func:`~adapterdrop.measure.memory.step_memory`); the calls per timing
sample come from the fastest warm-up step after the first (the first allocates the optimizer state and
fills the caches), so no extra call calibrates. Then all variants are timed in interleaved, rotated rounds
(:func:`~adapterdrop.measure.timing.interleave`), adding rounds while a speedup's interval is wider than the
target. Every record's ``timing`` says how many seconds of timed steps its variant ran (``timed_s``) and the
group's wall seconds from its first build to its last sample (``group_wall_s``): their ratio over a sweep is
its duty cycle. A :class:`~adapterdrop.measure.load.
LoadTracker` reads how busy the machine was around all of it.

Every record of the group carries the same ``run_id``. The speedup of a variant is the baseline's median
over its own, both from this run; ``speedup_ci`` is the 95% bootstrap interval over paired rounds
(:mod:`adapterdrop.measure.stats`); ``ideal_speedup`` = baseline FLOPs / variant FLOPs (``flops_step``) and
``efficiency`` = speedup / ideal; ``achieved_flops_s``, ``mfu`` and ``launch_bound`` come from
:mod:`adapterdrop.measure.utilization`. A record is ``noisy`` when its samples, its baseline's, its
interval or the machine's load say so (``noise`` lists why).

A variant that runs out of memory is recorded as ``oom``, one that fails as ``error`` (one-line message),
an inference-only variant in a train group as ``skipped``; the other variants of the group go on.
"""

from __future__ import annotations

import gc
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import torch

from adapterdrop.measure.allocator import hold_host_allocator
from adapterdrop.measure.flops import step_flops
from adapterdrop.measure.load import LoadTracker, describe_load
from adapterdrop.measure.memory import step_memory
from adapterdrop.measure.prepare import (
    InferenceOnlyError,
    PreparedStep,
    group_context,
    prepare_step,
)
from adapterdrop.measure.stats import (
    NoiseRule,
    paired_speedup_interval,
    ratio_of_medians,
    relative_half_width,
)
from adapterdrop.measure.timing import (
    TimingConfig,
    calls_per_sample,
    fixed_threads,
    interleave,
    per_round,
    timed_call,
)
from adapterdrop.measure.utilization import (
    device_peak,
    launch_fields,
    measured_bandwidth,
    utilization_fields,
)
from adapterdrop.scenario import Record, Scenario
from adapterdrop.workloads import bandwidth_fields, produced, workload_fields

INFERENCE_ONLY = "inference-only variant in a train phase"
#: what a record's ``timing.timer`` says took its samples
TIMER = "adapterdrop.measure.timing.sample: perf_counter around the timed calls; torch's Measurement"
#: longest error message kept in a record (CUDA's out-of-memory advice runs to 600 characters)
MAX_ERROR_CHARS = 200


def is_oom(exc: BaseException) -> bool:
    """True for an accelerator out-of-memory error or a failed host allocation."""
    return isinstance(exc, torch.OutOfMemoryError) or "can't allocate memory" in str(exc)


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message``, cut to :data:`MAX_ERROR_CHARS`."""
    text = str(exc).strip()
    line = f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 3] + "..."


def now_iso() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_id() -> str:
    """A fresh id for one interleaved measurement (12 hex digits)."""
    return uuid.uuid4().hex[:12]


def skipped_record(
    scenario: Scenario, why: str, env: dict[str, Any] | None = None, run_id: str = ""
) -> Record:
    """A ``skipped`` record of ``scenario`` with the reason, as part of run ``run_id``."""
    return Record.for_scenario(
        scenario, "skipped", run_id=run_id, error=why, env=env or {}, created_at=now_iso()
    )


def _describe(prepared: PreparedStep) -> dict[str, Any]:
    """Untimed facts of a prepared step: what was built, parameters, FLOPs (of the eager step in every
    execution mode: the same math, see :mod:`adapterdrop.measure.execution`), optimizer."""
    info = prepared.model.describe()
    flops = step_flops(prepared.execution.eager if prepared.execution else prepared)
    if "flops_by_draw" in flops:
        info["flops_by_draw"] = flops.pop("flops_by_draw")
    return {**prepared.counts(), **flops, "optimizer": prepared.optimizer_name, "variant_info": info}


def _memory(prepared: PreparedStep, values: dict[str, Any], primed: bool = False) -> None:
    """The step's memory fields: probed (``primed``: a step already ran), or as read at capture for CUDA
    graphs. A decode step's KV cache is allocated before the step and held across steps (persistent, like
    the parameters): it is added to the total peak; a prefill step fills its cache inside the step, so
    there it is part of ``activations`` and ``memory_kv_cache_bytes`` says how much of them."""
    captured = prepared.execution.memory if prepared.execution else None
    memory = dict(captured) if captured else step_memory(prepared, primed=primed)
    if prepared.scenario.phase == "decode" and "peak_memory_bytes" in memory:
        memory["peak_memory_bytes"] += values.get("memory_kv_cache_bytes", 0)
    if "memory_by_draw" in memory:
        values["variant_info"]["memory_by_draw"] = memory.pop("memory_by_draw")
    values.update(memory)


def _seconds_per_step(warm: list[float], step: Callable[[], None]) -> float:
    """Seconds of one step for calibration: the fastest warm-up step after the first (the first allocates
    the optimizer state and fills caches), the only one if one ran, or one timed step if none did."""
    return min(warm[1:] or warm) if warm else timed_call(step)


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def measure_group(
    scenarios: Sequence[Scenario],
    timing: TimingConfig,
    *,
    baseline: str | None = None,
    env: dict[str, Any] | None = None,
    noise: NoiseRule | None = None,
    run_id: str | None = None,
) -> list[Record]:
    """Measure ``scenarios`` (same cell, different variants) as one run; one record each, in order.

    ``baseline`` names the variant the others are compared with (no speedups if it is absent or failed).
    ``noise`` sets when a record is called noisy (default :class:`NoiseRule`). ``run_id`` names the run
    (default: a fresh id).
    """
    first = scenarios[0]
    if any(s.group != first.group for s in scenarios):
        raise ValueError("measure_group needs scenarios that differ only in their variant")
    device = torch.device(first.device)
    allocator = hold_host_allocator() if device.type == "cpu" else None  # see measure.allocator
    outcome: dict[str, dict[str, Any]] = {}
    prepared: dict[str, PreparedStep] = {}
    numbers: dict[str, int] = {}
    timed: dict[str, tuple[Callable[[], None], int]] = {}

    def failed(variant: str, exc: BaseException) -> None:
        prepared.pop(variant, None)
        _free(device)
        outcome[variant] = {"status": "oom" if is_oom(exc) else "error", "error": one_line(exc)}

    made = produced(first)  # samples and tokens one step produces: the numerators of the throughputs
    with fixed_threads(first.threads):
        peak = device_peak(first.device, first.dtype, first.threads)  # measured once on a CPU, then cached
        bandwidth = (
            measured_bandwidth(first.device, first.threads)["bytes_s"] if first.phase == "decode" else None
        )
    with fixed_threads(first.threads), LoadTracker() as load:
        started = time.perf_counter()
        context = group_context(first)
        for scenario in scenarios:
            try:
                ready = prepare_step(scenario, context)
                values = {**_describe(ready), **workload_fields(ready)}
                warm = [timed_call(ready.step) for _ in range(timing.warmup_steps)]
                _memory(ready, values, primed=bool(warm))
                values.update(launch_fields(ready.step, device))
                timed[scenario.variant] = ready.timed()
                numbers[scenario.variant] = calls_per_sample(
                    _seconds_per_step(warm, ready.step) * timed[scenario.variant][1], timing.min_sample_time_s
                )
            except InferenceOnlyError:
                outcome[scenario.variant] = {"status": "skipped", "error": INFERENCE_ONLY}
                continue
            except Exception as exc:  # recorded as the variant's status; the group goes on
                failed(scenario.variant, exc)
                continue
            prepared[scenario.variant] = ready
            outcome[scenario.variant] = values
        measurements = interleave(
            {name: timed[name][0] for name in prepared},
            numbers,
            first.threads,
            timing,
            on_error=failed,
            more=lambda samples: _needs_more_rounds(samples, baseline, timing.ci_target),
            steps={name: timed[name][1] for name in prepared},
            warm={name: ready.step for name, ready in prepared.items()},
        )
        group_wall_s = time.perf_counter() - started
    for name, measurement in measurements.items():
        outcome[name].update(
            {
                "status": "ok",
                "time_median_s": measurement.median,
                "time_iqr_s": measurement.iqr,
                "time_samples_s": per_round(measurement),
                "throughput_samples_s": made.samples / measurement.median,
                "throughput_tokens_s": made.tokens / measurement.median,
                **bandwidth_fields(prepared[name], measurement.median, bandwidth),
                **utilization_fields(outcome[name].get("flops_step"), measurement.median, peak),
                "timing": {
                    "rounds": len(measurement.times),
                    "calls_per_sample": numbers[name],
                    "steps_per_call": timed[name][1],
                    "min_sample_time_s": timing.min_sample_time_s,
                    "warmup_steps": timing.warmup_steps,
                    "sample_warmup_steps": timing.sample_warmup_steps,
                    "timed_s": sum(per_round(measurement)) * numbers[name] * timed[name][1],
                    "group_wall_s": group_wall_s,
                    "max_rounds": timing.round_limit,
                    "ci_target": timing.ci_target,
                    "meets_confidence": measurement.meets_confidence(),
                    "timer": TIMER,
                    "host_allocator": allocator,
                },
            }
        )
    load_fields = load.fields()
    _add_ratios(outcome, baseline, noise or NoiseRule(), load_fields)
    for name, ready in prepared.items():
        if ready.execution is not None:  # compile / capture seconds, recompilations (counted after timing)
            outcome[name].update(ready.execution.fields())
            if late := ready.execution.noise():
                outcome[name]["noise"] = outcome[name].get("noise", []) + late
                outcome[name]["noisy"] = True
    run_id = run_id or new_run_id()
    created = now_iso()
    return [
        Record.for_scenario(
            s, run_id=run_id, env=env or {}, load=load_fields, created_at=created, **outcome[s.variant]
        )
        for s in scenarios
    ]


def _needs_more_rounds(samples: dict[str, list[float]], baseline: str | None, target: float) -> bool:
    """True while some variant's speedup interval reaches further than ``target`` from its speedup."""
    base = samples.get(baseline) if baseline is not None else None
    if not base:
        return False
    for name, times in samples.items():
        if name == baseline:
            continue
        interval = paired_speedup_interval(base, times)
        speedup = ratio_of_medians(base, times)
        if interval is None or relative_half_width(speedup, interval) > target:
            return True
    return False


def _add_ratios(
    outcome: dict[str, dict[str, Any]], baseline: str | None, rule: NoiseRule, load: dict[str, Any]
) -> None:
    """speedup, its interval, ideal_speedup, efficiency and the noise verdict of every ok variant."""
    loaded = [describe_load(load)] if load.get("loaded") else []
    base = outcome.get(baseline) if baseline is not None else None
    for name, values in outcome.items():
        if values["status"] != "ok":
            continue
        reasons = rule.sample_reasons(name, values["time_samples_s"]) + loaded
        if base is not None and base["status"] == "ok":
            speedup = base["time_median_s"] / values["time_median_s"]
            values["speedup"] = speedup
            if name != baseline:
                interval = paired_speedup_interval(base["time_samples_s"], values["time_samples_s"])
                values["speedup_ci"] = list(interval) if interval else None
                reasons += rule.sample_reasons(f"baseline {baseline}", base["time_samples_s"])
                reasons += rule.interval_reasons(speedup, interval, len(values["time_samples_s"]))
            else:
                values["speedup_ci"] = [1.0, 1.0]
            if values["flops_step"] and base["flops_step"]:
                values["ideal_speedup"] = base["flops_step"] / values["flops_step"]
                values["efficiency"] = speedup / values["ideal_speedup"]
        values["noise"] = reasons
        values["noisy"] = bool(reasons)
