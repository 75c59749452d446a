"""What else the machine did while a group was measured: a tracker around the measurement.

On a shared 2-core machine one other busy process slows a step 2-5x, so every record says how busy the
machine was around it. :class:`LoadTracker` is a context manager (the tracker pattern of
optimum-benchmark): around a block it reads

- the CPU time of the whole machine (``/proc/stat`` through psutil) minus this process's own CPU time,
  per second of wall time: ``other_cpu_cores``, the mean number of cores other processes used;
- the CPU time the hypervisor gave to other guests (``steal``), per second: ``steal_cpu_cores``;
- the 1-minute load average and, where the kernel has pressure stall information, the share of time
  some runnable task waited for a CPU (``/proc/pressure/cpu``, ``some avg10``, percent), at entry and
  exit.

A block is ``loaded`` when other processes or other guests took at least :data:`LOADED_CORES` cores on
average: then the machine was not the measurement's alone, and its numbers are not stated as results.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import psutil

#: mean cores taken by other processes (or other guests) from which a measurement counts as loaded
LOADED_CORES = 0.25
_PSI_CPU = Path("/proc/pressure/cpu")


def cpu_pressure_some_avg10() -> float | None:
    """Percent of the last 10 s in which some runnable task waited for a CPU, or None without PSI."""
    try:
        for line in _PSI_CPU.read_text().splitlines():
            if line.startswith("some"):
                fields = dict(item.split("=") for item in line.split()[1:])
                return float(fields["avg10"])
    except (OSError, ValueError, KeyError):
        return None
    return None


def _load_average_1m() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _busy_and_steal() -> tuple[float, float]:
    """CPU seconds the machine spent busy (all processes, all cores) and stolen by the hypervisor."""
    times = psutil.cpu_times()
    busy = sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))
    return busy, getattr(times, "steal", 0.0)


def _own_cpu() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system + times.children_user + times.children_system


class LoadTracker:
    """Context manager: the machine's load around a block; :meth:`fields` gives the record's ``load``."""

    def __init__(self) -> None:
        self._start: tuple[float, float, float, float] | None = None
        self._values: dict[str, Any] = {}

    def __enter__(self) -> LoadTracker:
        busy, steal = _busy_and_steal()
        self._values = {
            "loadavg_1m_before": _load_average_1m(),
            "cpu_pressure_avg10_before": cpu_pressure_some_avg10(),
        }
        self._start = (time.monotonic(), busy, steal, _own_cpu())
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._start is not None, "LoadTracker exited before it was entered"
        wall0, busy0, steal0, own0 = self._start
        busy, steal = _busy_and_steal()
        wall = max(time.monotonic() - wall0, 1e-9)
        other = max(0.0, (busy - busy0) - (_own_cpu() - own0)) / wall
        stolen = max(0.0, steal - steal0) / wall
        self._values.update(
            {
                "loadavg_1m_after": _load_average_1m(),
                "cpu_pressure_avg10_after": cpu_pressure_some_avg10(),
                "other_cpu_cores": round(other, 3),
                "steal_cpu_cores": round(stolen, 3),
                "cpu_count": psutil.cpu_count(),
                "seconds": round(wall, 3),
                "loaded": other >= LOADED_CORES or stolen >= LOADED_CORES,
            }
        )

    def fields(self) -> dict[str, Any]:
        """The ``load`` block of a record (see the module docstring)."""
        return dict(self._values)


def describe_load(load: dict[str, Any]) -> str:
    """One line for a warning or a noise reason: how busy the machine was."""
    return (
        f"machine loaded: other processes used {load.get('other_cpu_cores', 0):.2f} cores"
        f" and other guests {load.get('steal_cpu_cores', 0):.2f} cores on average"
        f" (of {load.get('cpu_count')}; load average {load.get('loadavg_1m_after')})"
    )
