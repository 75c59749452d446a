"""Peak memory of a few steps, in bytes, above what was in use before them.

CUDA: the caching allocator's peak counters. CPU: with glibc, the bytes that malloc has handed out and not
taken back (``mallinfo2``: in-use heap blocks plus mmapped blocks), sampled in a thread, so memory freed by
an earlier step and reused is not mistaken for nothing; elsewhere the process's resident set size (RSS),
whose growth misses memory that the allocator reuses after the first step.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable

import psutil
import torch

CUDA_KIND = "cuda_max_allocated"
HOST_ALLOCATED_KIND = "host_allocated_peak"
HOST_RSS_KIND = "host_rss_growth"


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _mallinfo2() -> Callable[[], int] | None:
    """A reader of glibc's bytes in use (heap + mmapped blocks), or None without glibc >= 2.33."""
    name = ctypes.util.find_library("c")
    try:
        function = ctypes.CDLL(name).mallinfo2 if name else None
    except (OSError, AttributeError):
        return None
    if function is None:
        return None
    function.restype = _MallInfo2

    def in_use() -> int:
        info = function()
        return info.uordblks + info.hblkhd

    return in_use


_HOST_IN_USE = _mallinfo2()


class HostPeak:
    """Context manager: samples host memory in a thread; ``growth`` = peak - value at entry (bytes).

    ``kind`` says what is sampled: ``host_allocated_peak`` (glibc's bytes in use) or ``host_rss_growth``
    (resident set size). ``interval_s`` is the sampling period in seconds; a peak shorter than it can be
    missed, so the result is a lower bound of the true peak.
    """

    def __init__(self, interval_s: float = 0.001) -> None:
        self.interval_s = interval_s
        process = psutil.Process()
        self._read = _HOST_IN_USE or (lambda: process.memory_info().rss)
        self.kind = HOST_ALLOCATED_KIND if _HOST_IN_USE else HOST_RSS_KIND
        self.start = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, self._read())

    def __enter__(self) -> HostPeak:
        self.start = self.peak = self._read()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, name="host-memory-peak", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, self._read())

    @property
    def growth(self) -> int:
        """Peak above the value at entry, in bytes."""
        return self.peak - self.start


def peak_memory(step: Callable[[], object], steps: int, device: torch.device) -> tuple[int, str]:
    """Peak memory (bytes) that ``steps`` calls of ``step`` need above what was in use before, and its kind.

    CUDA: ``max_memory_allocated`` after ``reset_peak_memory_stats``, minus the allocation before.
    CPU: host memory sampled by :class:`HostPeak` (see there for its ``kind``).
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        for _ in range(steps):
            step()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before, CUDA_KIND
    with HostPeak() as host:
        for _ in range(steps):
            step()
    return host.growth, host.kind
