"""Memory over one step: the peak of each phase (forward, backward, optimizer) and a timeline. Bytes.

- :func:`phase_peaks` runs one step a phase at a time: on a GPU the caching allocator's peak
  (``max_memory_allocated``, reset before each phase); on the CPU the sampled malloc heap
  (:class:`adapterdrop.measure.memory.HostPeak`, glibc's bytes in use, a lower bound). Each phase's peak
  is given above what was allocated when the step began (the parameters, the optimizer state and
  anything else that lives across steps are below that line). It also counts the process's minor page
  faults in each phase (``getrusage``; where the host has it): pages the kernel hands out and zeroes on
  first touch because the allocator returned freed memory to it, work that neither FLOPs nor the
  allocator's peak show.
- :func:`timeline` reads the allocator's events of a profiled step from the trace (``profile_memory``:
  bytes of tensors allocated after every allocation and free, exact; on the CPU torch's CPU allocator),
  relative to the start of the step, with the peak of each phase range.
- :func:`cuda_snapshot` (GPU only) records the allocator's history over one step and writes a snapshot
  to open at https://pytorch.org/memory_viz (``torch.cuda.memory._record_memory_history``, the way
  PyTorch's "Understanding CUDA Memory Usage" guide records one).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch

from adapterdrop.measure.memory import HostPeak
from adapterdrop.profile.step import PhasedStep
from adapterdrop.profile.trace import Trace

#: most points a timeline keeps (the maximum of each bucket, so the peak survives)
TIMELINE_POINTS = 400


def phase_peaks(step: PhasedStep, device: torch.device) -> dict[str, Any]:
    """Per phase of one step: ``peak_bytes`` above the step's start, and how it was read (``kind``)."""
    phases: dict[str, int] = {}
    faults: dict[str, int | None] = {}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        start = torch.cuda.memory_allocated(device)
        for phase, run in step.each_phase():
            torch.cuda.reset_peak_memory_stats(device)
            before = minor_faults()
            run()
            torch.cuda.synchronize(device)
            faults[phase] = _since(before)
            phases[phase] = torch.cuda.max_memory_allocated(device) - start
        kind = "cuda_max_allocated"
    else:
        start = None
        kind = ""
        for phase, run in step.each_phase():
            before = minor_faults()
            with HostPeak() as heap:
                run()
            faults[phase] = _since(before)
            start = heap.start if start is None else start
            phases[phase] = heap.peak - start
            kind = heap.kind
    return {"kind": kind, "peak_bytes": phases, "minor_page_faults": faults}


def minor_faults() -> int | None:
    """The process's minor page faults so far (None where ``resource`` is missing: Windows)."""
    try:
        import resource
    except ImportError:
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _since(before: int | None) -> int | None:
    now = minor_faults()
    return None if before is None or now is None else now - before


def timeline(trace: Trace, device: torch.device, points: int = TIMELINE_POINTS) -> dict[str, Any]:
    """The last profiled step's allocated bytes over time (``t_s`` from the step's start, ``bytes`` above
    its start) and each phase's peak above the start, from the trace's memory events."""
    events = trace.memory_events(1 if device.type == "cuda" else 0)
    if not trace.steps or not events:
        return {"t_s": [], "bytes": [], "phase_peak_bytes": {}}
    start, end = trace.steps[-1]
    before = [value for t, value in events if t < start]
    base = before[-1] if before else events[0][1]
    inside = [(t - start, value - base) for t, value in events if start <= t <= end]
    phase_peaks: dict[str, int] = {}
    for span in trace.ranges():
        if span.name in ("forward", "backward", "optimizer") and start <= span.start <= end:
            values = [value - base for t, value in events if span.start <= t <= span.end]
            phase_peaks[span.name] = max(values, default=0)
    bucket = max(1, -(-len(inside) // points))
    kept = [max(inside[i : i + bucket], key=lambda point: point[1]) for i in range(0, len(inside), bucket)]
    return {
        "t_s": [t for t, _ in kept],
        "bytes": [value for _, value in kept],
        "phase_peak_bytes": phase_peaks,
        "source": "torch.profiler memory events (bytes of tensors allocated)",
    }


def cuda_snapshot(step: PhasedStep, path: Path) -> str | None:
    """Record the CUDA allocator's history over one step into ``path`` (a pickle for memory_viz); returns
    an error message instead of raising when this torch build cannot."""
    try:
        torch.cuda.memory._record_memory_history(max_entries=100_000)
        step()
        torch.cuda.synchronize()
        torch.cuda.memory._dump_snapshot(str(path))
    except (RuntimeError, AttributeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        with contextlib.suppress(RuntimeError, AttributeError):
            torch.cuda.memory._record_memory_history(enabled=None)
    return None
