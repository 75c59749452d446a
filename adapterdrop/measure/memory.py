"""Peak memory of a few steps: accelerator peak counters on CUDA, sampled host RSS on CPU (bytes)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import psutil
import torch

CUDA_KIND = "cuda_max_allocated"
HOST_KIND = "host_rss_growth"


class RssPeak:
    """Context manager: samples this process's resident set size in a thread; ``growth`` = peak - start.

    ``interval_s`` is the sampling period in seconds; a peak shorter than it can be missed, so the result
    is a lower bound of the true peak growth (bytes).
    """

    def __init__(self, interval_s: float = 0.001) -> None:
        self.interval_s = interval_s
        self.start = 0
        self.peak = 0
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> RssPeak:
        self.start = self.peak = self._process.memory_info().rss
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, name="rss-peak", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth(self) -> int:
        """Peak RSS above the RSS at entry, in bytes."""
        return self.peak - self.start


def peak_memory(step: Callable[[], object], steps: int, device: torch.device) -> tuple[int, str]:
    """Peak memory (bytes) that ``steps`` calls of ``step`` need above what was in use before, and its kind.

    CUDA: ``max_memory_allocated`` after ``reset_peak_memory_stats``, minus the allocation before.
    CPU: growth of the host resident set size, sampled by :class:`RssPeak`.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        for _ in range(steps):
            step()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before, CUDA_KIND
    with RssPeak() as rss:
        for _ in range(steps):
            step()
    return rss.growth, HOST_KIND
