"""FLOPs and bytes moved by every operator of a step, attributed to phase and region.

One untimed step runs under ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs, 2 per multiply-add; with
the CPU attention formulas of :mod:`adapterdrop.measure.flops`) and, inside it, an :class:`OpCounter` (a
``TorchDispatchMode``) that sees each aten operator, reads the FLOPs FlopCounterMode counted for it, counts
the bytes it moves, and files both under ``(phase, region path, operator)`` from
:meth:`adapterdrop.profile.regions.RegionTracer.where`. Backward operators land in the region whose
backward is running, so the forward and backward FLOPs of every region come out separately.

Bytes moved by an operator (a lower bound of its memory traffic: every operand read once, every result
written once, nothing re-read from memory): the bytes of its distinct tensor arguments, plus the bytes of
its results, plus the bytes of the arguments it writes in place (its schema marks them ``!``), each
tensor counted by the elements it spans (a broadcast dimension, stride 0, counts once). View operators
(``t``, ``view``, ``expand``, ...) move nothing; ``empty*`` allocates without writing. ``_fused_adam[w]_``
marks its gradients writable but writes them only when it unscales them (``grad_scale``); without it they
count as read only. The optimizer's element-wise work has no FLOP formula (0 FLOPs) but moves bytes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

import adapterdrop.measure.flops  # noqa: F401 -- registers the CPU attention FLOP formulas
from adapterdrop.models.encoder import tracing_regions
from adapterdrop.profile.step import PhasedStep

#: operators that allocate a result without writing it
_UNWRITTEN_RESULTS = ("aten.empty", "aten.new_empty", "aten.empty_like", "aten.empty_strided")
#: fused optimizers whose ``grads`` are writable only to unscale them in place (``grad_scale``)
_FUSED_OPTIMIZERS = ("aten._fused_adamw_", "aten._fused_adam_")


@dataclass
class OpTotals:
    """Calls, FLOPs (2 per multiply-add) and bytes moved of one operator in one phase and region;
    ``by_call`` counts the calls per ``(FLOPs, bytes)`` of one call (what a roofline needs)."""

    calls: float = 0
    flops: float = 0
    bytes: float = 0
    by_call: dict[tuple[float, float], float] = field(default_factory=dict)

    def record(self, flops: float, moved: float) -> None:
        """One call that ran ``flops`` and moved ``moved`` bytes."""
        self.calls += 1
        self.flops += flops
        self.bytes += moved
        self.by_call[(flops, moved)] = self.by_call.get((flops, moved), 0) + 1

    def add(self, other: OpTotals, weight: float = 1.0) -> None:
        self.calls += other.calls * weight
        self.flops += other.flops * weight
        self.bytes += other.bytes * weight
        for call, count in other.by_call.items():
            self.by_call[call] = self.by_call.get(call, 0) + count * weight


#: ``(phase, region path, operator)`` -> totals
Counts = dict[tuple[str, str, str], OpTotals]


def spanned_bytes(tensor: torch.Tensor) -> int:
    """Bytes of the distinct elements ``tensor`` spans (dimensions with stride 0 count once)."""
    sizes = [size for size, stride in zip(tensor.shape, tensor.stride(), strict=True) if stride != 0]
    return math.prod(sizes) * tensor.element_size()


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


def _identity(tensor: torch.Tensor) -> tuple[Any, ...]:
    return (tensor.data_ptr(), tuple(tensor.shape), tuple(tensor.stride()), tensor.dtype)


def bytes_moved(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    """Bytes an aten operator reads and writes (see the module docstring)."""
    name = str(func.overloadpacket)
    if func.is_view:
        return 0
    read = {_identity(t): spanned_bytes(t) for t in _tensors((args, kwargs))}
    written: dict[tuple[Any, ...], int] = {}
    if not name.startswith(_UNWRITTEN_RESULTS):
        written.update((_identity(t), spanned_bytes(t)) for t in _tensors(out))
    schema_args = func._schema.arguments
    unscaled = name in _FUSED_OPTIMIZERS and kwargs.get("grad_scale") is None
    for position, argument in enumerate(schema_args):
        if argument.alias_info is None or not argument.alias_info.is_write:
            continue
        if unscaled and argument.name == "grads":
            continue
        value = args[position] if position < len(args) else kwargs.get(argument.name)
        written.update((_identity(t), spanned_bytes(t)) for t in _tensors(value))
    return sum(read.values()) + sum(written.values())


class OpCounter(TorchDispatchMode):
    """Files each operator's FLOPs (read from ``flops``, the enclosing FlopCounterMode) and bytes moved
    under ``where()`` = ``(phase, region path)``. Enter it inside ``flops``."""

    def __init__(self, flops: FlopCounterMode, where: Callable[[], tuple[str, str]]) -> None:
        super().__init__()
        self.flops = flops
        self.where = where
        self.counts: Counts = defaultdict(OpTotals)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204 -- torch's API
        kwargs = kwargs or {}
        if func.namespace == "profiler":  # the profiler's own range markers: no work
            return func(*args, **kwargs)
        before = self.flops.get_total_flops()
        out = func(*args, **kwargs)
        flops = self.flops.get_total_flops() - before
        self.counts[(*self.where(), str(func.overloadpacket))].record(
            flops, bytes_moved(func, args, kwargs, out)
        )
        return out


def count_step(step: PhasedStep) -> Counts:
    """The counts of one step of ``step`` (a real step: the optimizer updates the weights).

    A variant that draws its computation (robust AdapterDrop) is counted once per value it can draw,
    and the counts are the mean over those equally likely values (calls, FLOPs and bytes may then be
    fractional).
    """
    model = step.prepared.model
    draws = model.draw_values() if step.prepared.loss is not None else ()
    merged: Counts = defaultdict(OpTotals)
    for value in draws or (0,):  # a deterministic variant ignores fixed_draw: counted once
        with (
            model.fixed_draw(value),
            tracing_regions(step.tracer),
            FlopCounterMode(display=False) as flops,
            OpCounter(flops, step.tracer.where) as ops,
        ):
            step()
        for key, totals in ops.counts.items():
            merged[key].add(totals, 1.0 / len(draws or (0,)))
    return dict(merged)
