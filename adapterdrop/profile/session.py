"""Profile the variants of one group (a variant, and with ``--vs`` the one it is compared with) into a folder.

For the group the planner made (:mod:`adapterdrop.plan`), in one process:

1. unless ``measure`` is off, the harness measures the group as it always does
   (:func:`adapterdrop.measure.runner.measure_group`: interleaved rounds, speedup with its interval, FLOPs,
   memory, achieved FLOP/s and MFU) into ``records.jsonl``;
2. every variant is prepared on one shared encoder (:func:`adapterdrop.measure.prepare.prepare_step`),
   warmed up, and then
   - counted: one step under FlopCounterMode with the operator counter (:mod:`.counting`),
   - traced: ``wait + warmup + active`` steps under ``torch.profiler`` with the named regions as ranges,
     written as a Chrome / Perfetto trace (:mod:`.trace`),
   - its memory read per phase and over the traced step (:mod:`.memory`),
   - its forward counted again by fvcore (:mod:`.fvcore_table`);
3. the breakdown (:mod:`.breakdown`), the roofline (:mod:`.roofline`), utilisation and launch-boundness
   (:mod:`adapterdrop.measure.utilization`) are written as ``breakdown.json`` and ``breakdown.md``.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.benchmark import Timer

from adapterdrop.measure.allocator import hold_host_allocator
from adapterdrop.measure.env import collect_env
from adapterdrop.measure.prepare import PreparedStep, group_context, prepare_step
from adapterdrop.measure.runner import measure_group, now_iso
from adapterdrop.measure.timing import TimingConfig, fixed_threads
from adapterdrop.measure.utilization import (
    NOT_APPLICABLE,
    device_peak,
    launch_stats,
    measured_bandwidth,
    measured_matmul_peak,
    measured_source,
)
from adapterdrop.models.encoder import region, tracing_regions
from adapterdrop.plan import Group
from adapterdrop.profile import breakdown, fvcore_table, memory
from adapterdrop.profile.counting import count_step
from adapterdrop.profile.regions import RegionTracer
from adapterdrop.profile.render import render_markdown
from adapterdrop.profile.roofline import roofline
from adapterdrop.profile.step import PhasedStep
from adapterdrop.profile.trace import Schedule, Trace, record_trace
from adapterdrop.results import append_records
from adapterdrop.scenario import Scenario


@dataclass(frozen=True)
class ProfileOptions:
    """How to profile: the profiler's schedule, what the trace keeps (``ops``: every operator; ``ranges``:
    only the named ranges, small enough to commit), the harness timing (None: skip it)."""

    steps: Schedule = field(default_factory=Schedule)
    trace: str = "ops"
    timing: TimingConfig | None = field(default_factory=TimingConfig)
    warmup_steps: int = 2
    fvcore: bool = True


def slug(text: str) -> str:
    """A file-name-safe form of a variant name (``parallel:tasks=8,n=5`` -> ``parallel_tasks=8_n=5``)."""
    return text.replace(":", "_").replace(",", "_").replace("/", "_")


def folder_name(group: Group) -> str:
    """The folder of a group's profile: ``<variant>[-vs-<other>]-<phase>-<model>-b<B>-s<S>-<device>-<dtype>``
    then ``-autocast`` where it applies and ``-t<threads>``."""
    first = group.scenarios[-1]
    names = slug(first.variant) + (f"-vs-{slug(group.baseline.variant)}" if len(group.scenarios) > 1 else "")
    settings = [first.phase, slug(first.model), f"b{first.batch_size}", f"s{first.seq_len}"]
    settings += [first.device.replace(":", ""), first.dtype]
    if first.precision != "native":
        settings.append(first.precision)
    settings.append(f"t{first.threads}")
    return "-".join([names, *settings])


def _quiet(message: str) -> None:
    """The default progress log: says nothing."""


def profile_group(
    group: Group, options: ProfileOptions, out: Path, command: str = "", log: Callable[[str], None] = _quiet
) -> dict[str, Any]:
    """Profile the variants of ``group`` into the folder ``out`` (see the module docstring); returns what
    ``breakdown.json`` holds. ``log`` receives one line per stage (progress)."""
    out.mkdir(parents=True, exist_ok=True)
    first = group.baseline
    allocator = hold_host_allocator() if torch.device(first.device).type == "cpu" else None
    env = collect_env(first.device, first.threads)
    records = []
    if options.timing is not None:
        log(f"measuring {', '.join(s.variant for s in group.scenarios)} with the harness")
        records = measure_group(group.scenarios, options.timing, baseline=first.variant, env=env)
        (out / "records.jsonl").unlink(missing_ok=True)
        append_records(out / "records.jsonl", records)
    device = torch.device(first.device)
    profiles: dict[str, Any] = {}
    with fixed_threads(first.threads):
        context = group_context(first)
        for scenario in group.scenarios:
            log(f"profiling {scenario.variant}: counting, tracing {options.steps.total} steps, memory")
            prepared = prepare_step(scenario, context)
            profiles[scenario.variant] = _profile_variant(prepared, scenario, options, out, device)
            del prepared  # frees this variant's model (full: a copy of the encoder) before the next is built
    result = {
        "command": command,
        "created_at": now_iso(),
        "schedule": vars(options.steps),
        "host_allocator": allocator,
        "baseline": first.variant if len(group.scenarios) > 1 else None,
        "variants": profiles,
        "records": [r.to_dict() for r in records],
        "env": env,
    }
    (out / "breakdown.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "breakdown.md").write_text(render_markdown(result), encoding="utf-8")
    return result


def _profile_variant(
    prepared: PreparedStep, scenario: Scenario, options: ProfileOptions, out: Path, device: torch.device
) -> dict[str, Any]:
    for _ in range(options.warmup_steps):
        prepared.step()
    counting = PhasedStep(prepared, RegionTracer())
    counts = count_step(counting)
    traced = PhasedStep(prepared, RegionTracer(ranges=True))
    trace_path = out / f"trace-{slug(scenario.variant)}.json"
    with tracing_regions(traced.tracer):
        trace = record_trace(traced, device, options.steps, trace_path)
    if options.trace == "ranges":
        trace_path.write_text(json.dumps(trace.slim()))
    regions = {**traced.tracer.regions, **counting.tracer.regions}
    figures = breakdown.StepFigures(regions, counts, trace.range_times())
    layers = breakdown.layer_rows(figures, prepared.model, scenario.batch_size)
    modules = breakdown.module_rows(figures, prepared.model)
    plain = PhasedStep(prepared, RegionTracer())
    result: dict[str, Any] = {
        "scenario": vars(scenario),
        "trace": trace_path.name,
        "describe": prepared.model.describe(),
        "params": prepared.counts(),
        "optimizer": prepared.optimizer_name,
        "step_s": trace.step_seconds(),
        "phases": {phase: figures.phase_time(phase) for phase in counting.phases},
        "flops": {phase: figures.phase_flops(phase) for phase in ("forward", "backward")},
        "bytes": {phase: figures.phase_bytes(phase) for phase in counting.phases},
        "layers": layers,
        "modules": modules,
        "shares": breakdown.shares(modules),
        "utilization": _utilization(scenario, figures, trace),
        "roofline": _roofline(scenario, counts),
        "launch": launch_stats(trace.events) if trace.on_gpu else NOT_APPLICABLE,
        "memory": {
            "phases": memory.phase_peaks(plain, device),
            "timeline": memory.timeline(trace, device),
        },
        "ranges_off": _ranges_off_cost(traced.tracer, options.steps.total, scenario.threads),
    }
    if device.type == "cuda":
        snapshot = out / f"memory-{slug(scenario.variant)}.pickle"
        error = memory.cuda_snapshot(plain, snapshot)
        result["memory"]["snapshot"] = snapshot.name if error is None else error
    if options.fvcore:
        result["fvcore"] = fvcore_table.compare(prepared.model, prepared.batch.input_ids)
    return result


def _utilization(scenario: Scenario, figures: breakdown.StepFigures, trace: Trace) -> dict[str, Any]:
    """The profiled steps' achieved FLOP/s and MFU (FLOPs of one step over each step's wall time)."""
    peak = device_peak(scenario.device, scenario.dtype, scenario.threads)
    flops = sum(figures.phase_flops(phase) for phase in ("forward", "backward"))
    achieved = [flops / seconds for seconds in trace.step_seconds() if seconds > 0]
    return {
        "flops_step": flops,
        "achieved_flops_s": achieved,
        "peak_flops_s": peak.flops_s,
        "peak_flops_source": peak.source,
        "mfu": [value / peak.flops_s for value in achieved] if peak.flops_s else None,
    }


def _roofline(scenario: Scenario, counts: Any) -> dict[str, Any]:
    peak = measured_matmul_peak(scenario.device, scenario.dtype, scenario.threads)
    bandwidth = measured_bandwidth(scenario.device, scenario.threads)
    result = roofline(counts, peak["flops_s"], bandwidth["bytes_s"])
    result["peak_source"] = measured_source(peak)
    result["bandwidth_source"] = measured_source(bandwidth)
    return result


def _ranges_off_cost(tracer: RegionTracer, steps: int, threads: int) -> dict[str, Any]:
    """What the named regions cost when nothing traces them: region calls per step x the measured cost
    of one :func:`region` call over calling the function directly (seconds)."""
    tensor = torch.zeros(1)
    direct = Timer("fn(t)", globals={"fn": torch.Tensor.clone, "t": tensor}, num_threads=threads)
    wrapped = Timer(
        "region('r', fn, t)",
        globals={"region": region, "fn": torch.Tensor.clone, "t": tensor},
        num_threads=threads,
    )
    seconds = [
        wrapped.blocked_autorange(min_run_time=0.2).median - direct.blocked_autorange(min_run_time=0.2).median
        for _ in range(3)
    ]
    calls = sum(r.calls for r in tracer.regions.values()) / steps
    per_call = max(0.0, statistics.median(seconds))
    return {"calls_per_step": calls, "seconds_per_call": per_call, "seconds_per_step": calls * per_call}
