"""Record a step under ``torch.profiler`` and read the trace back: time per range, per step; memory events.

:func:`record_trace` runs ``wait + warmup + active`` steps under ``torch.profiler.profile`` with the
schedule ``schedule(wait, warmup, active)`` (the profiler records only the active steps), shapes and memory
events on, and writes the Chrome / Perfetto trace (JSON). On a GPU each step ends with a synchronisation,
so its kernels finish inside it.

:class:`Trace` reads it: the active steps (``ProfilerStep#N`` ranges), the time of every named range in
each step (:meth:`Trace.range_times`; on the CPU the range's wall time, on a GPU the time of the kernels
launched inside it by any thread, joined to their launches by correlation id), and the allocator's memory
events.
Times are seconds.
"""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile, schedule

from adapterdrop.measure.utilization import kernel_spans, step_windows, synchronized


@dataclass(frozen=True)
class Schedule:
    """Steps of a profile: ``wait`` unrecorded, ``warmup`` traced but dropped, ``active`` recorded."""

    wait: int = 1
    warmup: int = 1
    active: int = 3

    @property
    def total(self) -> int:
        return self.wait + self.warmup + self.active


def record_trace(step: Callable[[], None], device: torch.device, steps: Schedule, path: Path) -> Trace:
    """Profile ``steps.total`` calls of ``step``; write the Chrome trace to ``path``; return it read back."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    run = synchronized(step, device)
    path.parent.mkdir(parents=True, exist_ok=True)
    with profile(
        activities=activities,
        schedule=schedule(wait=steps.wait, warmup=steps.warmup, active=steps.active, repeat=1),
        record_shapes=True,
        profile_memory=True,
        on_trace_ready=lambda prof: prof.export_chrome_trace(str(path)),
    ) as prof:
        for _ in range(steps.total):
            run()
            prof.step()
    return Trace.read(path)


@dataclass(frozen=True)
class Span:
    """A complete (``ph: X``) event: name, thread, start and end in seconds."""

    name: str
    tid: Any
    start: float
    end: float


class Trace:
    """The events of a Chrome trace written by ``torch.profiler``."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.events: list[dict[str, Any]] = data.get("traceEvents", [])
        self.steps = step_windows(self.events)
        self._kernels = kernel_spans(self.events)

    @classmethod
    def read(cls, path: Path) -> Trace:
        return cls(json.loads(Path(path).read_text()))

    @property
    def on_gpu(self) -> bool:
        """True when the trace holds GPU activity (kernels, copies)."""
        return bool(self._kernels)

    def ranges(self) -> list[Span]:
        """The named ranges (``record_function``, category ``user_annotation``) except the step markers."""
        return [
            Span(e["name"], e["tid"], e["ts"] * 1e-6, (e["ts"] + e["dur"]) * 1e-6)
            for e in self.events
            if e.get("cat") == "user_annotation"
            and e.get("ph") == "X"
            and not str(e.get("name", "")).startswith("ProfilerStep#")
        ]

    def step_seconds(self) -> list[float]:
        """Wall time of each active step (its ``ProfilerStep#N`` range)."""
        return [end - start for start, end in self.steps]

    def range_times(self) -> list[dict[str, float]]:
        """Per active step: seconds of every range name in it, summed over its occurrences in the step.

        CPU: the range's wall time (inclusive of the ranges inside it). GPU: the device time of the kernels
        launched inside the range (inclusive), so it holds what the GPU did, not how long the CPU took to
        launch it.
        """
        per_step: list[dict[str, float]] = [defaultdict(float) for _ in self.steps]
        starts = [start for start, _ in self.steps]
        device_time = self._device_time_within() if self.on_gpu else None
        for span in self.ranges():
            index = bisect.bisect_right(starts, span.start) - 1
            if index < 0 or span.start > self.steps[index][1]:
                continue
            seconds = device_time(span) if device_time is not None else span.end - span.start
            per_step[index][span.name] += seconds
        return [dict(step) for step in per_step]

    def _device_time_within(self) -> Callable[[Span], float]:
        """A function: span -> summed duration of the kernels launched within its time, on any thread.

        Any thread, because backward's kernels are launched by autograd's device thread while the thread
        that opened the ``backward`` phase range waits in ``loss.backward()``. This assumes what a profiled
        step does: one thread launches at a time (the main thread in forward and in the optimizer step,
        autograd's thread in backward), so a window holds only the launches of the work inside it.
        """
        launches = sorted((kernel.launch_ts, kernel.duration) for kernel in self._kernels)
        times = [ts for ts, _ in launches]
        sums = [0.0]
        for _, duration in launches:
            sums.append(sums[-1] + duration)

        def within(span: Span) -> float:
            low = bisect.bisect_left(times, span.start)
            high = bisect.bisect_right(times, span.end)
            return sums[high] - sums[low]

        return within

    def memory_events(self, device_type: int) -> list[tuple[float, int]]:
        """``(time s, bytes allocated)`` after every allocation or free on a device type (0 CPU, 1 CUDA)."""
        events = [
            (e["ts"] * 1e-6, int(e["args"]["Total Allocated"]))
            for e in self.events
            if e.get("name") == "[memory]" and e.get("args", {}).get("Device Type") == device_type
        ]
        return sorted(events)

    def slim(self) -> dict[str, Any]:
        """The trace with only its named ranges, step markers and metadata: small enough to commit."""
        kept = [e for e in self.events if e.get("ph") == "M" or e.get("cat") == "user_annotation"]
        return {**self.data, "traceEvents": kept}
