"""Memory of a step, in bytes: what a user must provision, part by part.

A step's total peak = parameters + optimizer state (both persistent, counted from the tensors themselves)
+ the step's transient peak (gradients, saved activations and temporaries, read from the allocator).
The transient peak is split into gradients (counted from the trainable parameters: with
``zero_grad(set_to_none=True)`` every gradient is allocated afresh each step and all exist at once before
the optimizer step) and the rest, ``activations`` (saved activations, temporaries, kernel workspaces).
The parts add up to the total by construction (:class:`MemoryParts`).

The transient peak is read by :class:`MemoryTracker` around one step taken after at least one earlier
step (so the optimizer state exists and is counted as persistent, whatever the number of warm-up steps;
the harness probes after its warm-up steps, so the probe adds one step per variant, see :func:`step_memory`).
CUDA: the caching allocator's peak counters. CPU: with glibc, the bytes that malloc has handed out and not
taken back (``mallinfo2``: in-use heap blocks plus mmapped blocks), sampled in a thread, so memory freed by
an earlier step and reused is not mistaken for nothing; elsewhere the process's resident set size (RSS),
whose growth misses memory that the allocator reuses after the first step.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psutil
import torch

if TYPE_CHECKING:
    from adapterdrop.measure.types import PreparedStep

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


class MemoryTracker:
    """Context manager: the transient peak of a block above what was in use at entry (``transient``, bytes).

    CUDA: ``max_memory_allocated`` after ``reset_peak_memory_stats`` minus the allocation at entry (exact).
    CPU: :class:`HostPeak` (a sampled lower bound; ``kind`` says which reading).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.kind = CUDA_KIND if device.type == "cuda" else ""
        self.transient = 0
        self._host: HostPeak | None = None
        self._before = 0

    def __enter__(self) -> MemoryTracker:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._before = torch.cuda.memory_allocated(self.device)
        else:
            self._host = HostPeak().__enter__()
            self.kind = self._host.kind
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.transient = torch.cuda.max_memory_allocated(self.device) - self._before
        else:
            assert self._host is not None, "MemoryTracker exited before it was entered"
            self._host.__exit__(*exc_info)
            self.transient = self._host.growth


def tensor_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes held by ``tensors``, each storage counted once (tied or shared weights are not doubled)."""
    seen: dict[int, int] = {}
    for tensor in tensors:
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def optimizer_state_bytes(optimizer: torch.optim.Optimizer | None) -> int:
    """Bytes of the optimizer's state tensors (AdamW: step, exp_avg, exp_avg_sq per parameter)."""
    if optimizer is None:
        return 0
    return tensor_bytes(v for state in optimizer.state.values() for v in state.values() if torch.is_tensor(v))


@dataclass(frozen=True)
class MemoryParts:
    """A step's memory in bytes; ``total`` = params + optimizer + grads + activations (what to provision)."""

    params: int
    optimizer: int
    grads: int
    activations: int
    kind: str

    @classmethod
    def from_step(cls, params: int, optimizer: int, grads: int, transient: int, kind: str) -> MemoryParts:
        """Parts from the persistent counts and a step's transient peak; the transient peak holds the
        gradients at least, so a sampled reading below them counts as them (activations 0)."""
        return cls(params, optimizer, grads, max(transient, grads) - grads, kind)

    @property
    def total(self) -> int:
        return self.params + self.optimizer + self.grads + self.activations

    def fields(self) -> dict[str, int | str]:
        """The record's memory fields."""
        return {
            "peak_memory_bytes": self.total,
            "memory_params_bytes": self.params,
            "memory_optimizer_bytes": self.optimizer,
            "memory_grads_bytes": self.grads,
            "memory_activations_bytes": self.activations,
            "memory_kind": self.kind,
        }


class GradientBytes:
    """Context manager: bytes of the gradients accumulated into ``params`` during the block (each counted
    once, when autograd finishes it; a parameter a step does not use gets none)."""

    def __init__(self, params: Iterable[torch.nn.Parameter]) -> None:
        self.params = list(params)
        self.bytes = 0
        self._seen: dict[int, int] = {}
        self._handles: list[Any] = []

    def _record(self, param: torch.Tensor) -> None:
        if param.grad is not None:
            self._seen[id(param)] = param.grad.untyped_storage().nbytes()

    def __enter__(self) -> GradientBytes:
        self._handles = [p.register_post_accumulate_grad_hook(self._record) for p in self.params]
        return self

    def __exit__(self, *exc_info: object) -> None:
        for handle in self._handles:
            handle.remove()
        self.bytes = sum(self._seen.values())


def step_memory(prepared: PreparedStep, *, primed: bool = False) -> dict[str, Any]:
    """The memory fields of a record for a prepared step (see the module docstring), untimed.

    A probe needs an earlier step, so that the optimizer state exists and counts as persistent: unless
    ``primed`` (the caller already ran a step, e.g. its warm-up), one unprobed step runs first, so the result
    does not depend on how many warm-up steps ran. A stochastic variant first takes one unprobed step with its
    smallest draw (robust AdapterDrop: n=0, which trains every adapter, so every optimizer state exists), then
    is probed once per value it draws: the fields describe the value with the largest total (what a user
    provisions), and ``peak_memory_expected_bytes`` is the mean total over the equally likely values.
    """
    model = prepared.model
    params = tensor_bytes(model.parameters())
    draws = model.draw_values() if prepared.loss is not None else ()
    if draws:
        with model.fixed_draw(min(draws)):
            prepared.step()
    elif not primed:
        prepared.step()
    readings: dict[int, MemoryParts] = {}
    for value in draws or (0,):  # a deterministic variant ignores fixed_draw: probed once
        with (
            model.fixed_draw(value),
            GradientBytes(prepared.trainable) as grads,
            MemoryTracker(prepared.device) as tracker,
        ):
            prepared.step()
        optimizer = optimizer_state_bytes(prepared.optimizer)
        readings[value] = MemoryParts.from_step(
            params, optimizer, grads.bytes, tracker.transient, tracker.kind
        )
    worst = max(readings.values(), key=lambda parts: parts.total)
    values: dict[str, Any] = worst.fields()
    if draws:
        values["peak_memory_expected_bytes"] = round(sum(p.total for p in readings.values()) / len(readings))
        values["memory_by_draw"] = {str(value): parts.total for value, parts in readings.items()}
    return values
