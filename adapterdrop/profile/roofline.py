"""A roofline ideal of a step: what it would take if every operator ran at the device's peak FLOP/s or at
its memory bandwidth, whichever bounds it.

For every operator call of one counted step (:mod:`adapterdrop.profile.counting`: FLOPs, 2 per
multiply-add, and bytes moved, a lower bound of its traffic), its ideal time is
``max(FLOPs / peak, bytes / bandwidth)``; a step's roofline time is the sum over its calls (operators run
one after another). Where FLOPs alone are counted (the FLOP ideal of the harness), the optimizer's
element-wise passes over the parameters, gradients and AdamW state, and any product with too few FLOPs per
byte (``intensity`` below the *ridge* ``peak / bandwidth``), cost nothing; the roofline counts them at the
bandwidth. ``measured / roofline`` >= 1 says how far a phase runs from that ideal.

Peak and bandwidth are the device's *measured* ones (:mod:`adapterdrop.measure.utilization`: a large
matmul and a large copy, cached), so the ideal is one this machine can reach, not a datasheet figure.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from adapterdrop.profile.counting import Counts


def call_seconds(flops: float, moved: float, peak_flops_s: float, bandwidth_bytes_s: float) -> float:
    """Ideal seconds of one call: ``max(flops / peak, bytes / bandwidth)``."""
    return max(flops / peak_flops_s, moved / bandwidth_bytes_s)


def roofline(counts: Counts, peak_flops_s: float, bandwidth_bytes_s: float, top: int = 12) -> dict[str, Any]:
    """Roofline time per phase and for the step, and the ``top`` operators by roofline time.

    Phases: ``flops``, ``bytes``, ``compute_s`` (FLOPs / peak), ``memory_s`` (bytes / bandwidth) and
    ``roofline_s`` (the sum of every call's ideal). Operators (per phase and operator name): the same,
    their ``intensity`` (FLOPs per byte) and ``bound`` (``compute`` or ``memory``, against the ridge).
    """
    phases: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    operators: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for (phase, _path, op), totals in counts.items():
        ideal = sum(
            n * call_seconds(f, b, peak_flops_s, bandwidth_bytes_s) for (f, b), n in totals.by_call.items()
        )
        for target in (phases[phase], operators[(phase, op)]):
            target["flops"] += totals.flops
            target["bytes"] += totals.bytes
            target["calls"] += totals.calls
            target["roofline_s"] += ideal
    ridge = peak_flops_s / bandwidth_bytes_s
    for values in (*phases.values(), *operators.values()):
        values["compute_s"] = values["flops"] / peak_flops_s
        values["memory_s"] = values["bytes"] / bandwidth_bytes_s
    ranked = sorted(operators.items(), key=lambda item: -item[1]["roofline_s"])[:top]
    return {
        "peak_flops_s": peak_flops_s,
        "bandwidth_bytes_s": bandwidth_bytes_s,
        "ridge_flops_per_byte": ridge,
        "phases": {phase: dict(values) for phase, values in phases.items()},
        "roofline_s": sum(values["roofline_s"] for values in phases.values()),
        "operators": [
            {
                "phase": phase,
                "operator": op,
                **values,
                "intensity": values["flops"] / values["bytes"] if values["bytes"] else None,
                "bound": "compute"
                if values["bytes"] and values["flops"] / values["bytes"] >= ridge
                else "memory",
            }
            for (phase, op), values in ranked
        ],
    }
