"""Trace the named regions of a step (:func:`adapterdrop.models.encoder.region`), forward and backward.

:class:`RegionTracer` is the tracer that :func:`~adapterdrop.models.encoder.tracing_regions` installs while a
step is profiled or counted. Regions nest into paths, e.g. ``layer.3/ffn_norm/adapter`` (``layer.3`` runs
``attention``, ``attention_norm``, ``ffn`` and ``ffn_norm``; an adapter or fusion layer runs inside the
``*_norm`` that closes its block; parallel inference runs the layers below the fork in ``shared_layers``).

Forward: a region is the call ``fn(*args)``; with ``ranges`` it is a ``torch.profiler.record_function``
range named by its path.

Backward: a region's backward starts when the gradient of its output is about to be used (a hook on the
output tensor) and ends when the gradient of its first input is (a hook on that input), i.e. it spans the
autograd nodes the region created. Autograd runs later-created nodes first, and the layer runner is a chain
(each region's input is the output of the one before), so these spans nest: the tracer keeps the open
backward regions as one chain (opening a region's enclosing regions first, and closing the regions that do
not enclose the one that starts), and with ``ranges`` each open span is a range named ``PATH (backward)``.
A region whose output needs no gradient (a layer below AdapterDrop's first adapter runs without autograd)
has no backward. :meth:`RegionTracer.finish_backward` closes what is still open when ``backward()`` returns.

:meth:`RegionTracer.where` names the innermost region running now (forward or backward), which is how
:mod:`adapterdrop.profile.counting` attributes each operator to a region.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch.autograd.profiler import record_function

#: suffix of the name of a region's backward range in a trace
BACKWARD_SUFFIX = " (backward)"


@dataclass
class Region:
    """One region path seen in a step: its leaf name, its enclosing path, calls, and the rows it ran on.

    ``rows_in`` / ``rows_out`` count the sequences of the region's first tensor argument / result
    (the product of all but the last two dims of a ``(..., S, H)`` tensor): the batch size B where a region
    runs once for every task, T·B where it runs once per task. None where the tensor is not ``(..., S, H)``.
    """

    path: str
    name: str
    parent: str
    calls: int = 0
    rows_in: int | None = None
    rows_out: int | None = None


def lineage(path: str) -> list[str]:
    """The paths enclosing ``path`` and itself, outermost first: ``a/b/c`` -> ``[a, a/b, a/b/c]``."""
    parts = path.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def encloses(outer: str, path: str) -> bool:
    """True when ``outer`` is ``path`` or one of the regions enclosing it."""
    return path == outer or path.startswith(outer + "/")


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _tensors(item)


def _first_needing_grad(value: Any) -> torch.Tensor | None:
    return next((t for t in _tensors(value) if t.requires_grad), None)


def _rows(value: Any, like: Any = None) -> int | None:
    """Sequences in the first tensor of ``value`` if it is ``(..., S, H)`` hidden states: the product of all
    but its last two dims. With ``like`` (the region's arguments), only when its last two dims are those of
    the first floating tensor there (so logits, ``(T, B, C)``, are not taken for hidden states)."""
    tensor = next(_tensors(value), None)
    if tensor is None or tensor.dim() < 3 or not tensor.is_floating_point():
        return None
    reference = next((t for t in _tensors(like) if t.is_floating_point() and t.dim() >= 3), None)
    if reference is not None and tensor.shape[-2:] != reference.shape[-2:]:
        return None
    return math.prod(tensor.shape[:-2])


class RegionTracer:
    """Runs regions, keeps their paths (:attr:`regions`), optionally as profiler ranges (``ranges``).

    ``phase`` is set by the caller around the parts of a step (``forward``, ``backward``, ``optimizer``);
    :meth:`where` reports it with the innermost region running now.
    """

    def __init__(self, ranges: bool = False) -> None:
        self.ranges = ranges
        self.phase = ""
        self.regions: dict[str, Region] = {}
        self._stack: list[str] = []
        self._open: list[tuple[str, record_function | None]] = []

    def __call__(self, name: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        parent = self._stack[-1] if self._stack else ""
        path = f"{parent}/{name}" if parent else name
        region = self.regions.get(path)
        if region is None:
            region = self.regions[path] = Region(path, name, parent)
        first_input = _first_needing_grad(args)
        self._stack.append(path)
        span = record_function(path) if self.ranges else None
        if span is not None:
            span.__enter__()
        try:
            out = fn(*args)
        finally:
            if span is not None:
                span.__exit__(None, None, None)
            self._stack.pop()
        region.calls += 1
        region.rows_in, region.rows_out = _rows(args), _rows(out, like=args)
        output = _first_needing_grad(out)
        if output is not None:
            output.register_hook(partial(self._backward_starts, path))
            if first_input is not None:
                first_input.register_hook(partial(self._backward_ends, path))
        return out

    def where(self) -> tuple[str, str]:
        """``(phase, path)``: the innermost region running now ("" outside every region)."""
        if self._stack:
            return self.phase, self._stack[-1]
        return self.phase, self._open[-1][0] if self._open else ""

    # ------------------------------------------------------------------------------------------- backward

    def _is_open(self, path: str) -> bool:
        return any(open_path == path for open_path, _ in self._open)

    def _open_one(self, path: str) -> None:
        span = record_function(path + BACKWARD_SUFFIX) if self.ranges else None
        if span is not None:
            span.__enter__()
        self._open.append((path, span))

    def _close_top(self) -> None:
        _, span = self._open.pop()
        if span is not None:
            span.__exit__(None, None, None)

    def _backward_starts(self, path: str, _grad: torch.Tensor) -> None:
        if self._is_open(path):
            return
        while self._open and not encloses(self._open[-1][0], path):
            self._close_top()
        for enclosing in lineage(path):
            if not self._is_open(enclosing):
                self._open_one(enclosing)

    def _backward_ends(self, path: str, _grad: torch.Tensor) -> None:
        if not self._is_open(path):
            return
        while self._open[-1][0] != path:
            self._close_top()
        self._close_top()

    def finish_backward(self) -> None:
        """Close the backward regions still open (call it when ``backward()`` has returned)."""
        while self._open:
            self._close_top()
