"""Test-only planted defects, switched on by one environment variable, ``ADAPTERDROP_PLANT``, read here only.

The regression gate (:mod:`adapterdrop.regress`) must be shown to fail on a real slowdown; this module
plants one. ``ADAPTERDROP_PLANT`` holds comma-separated items:

- ``adapter:F``: every adapter block (:func:`adapterdrop.models.adapters.bottleneck_block`) ends with busy
  work lasting F times the time its layer has taken so far (for a Pfeiffer adapter, at the end of the layer:
  about F times the layer's forward). Only variants with adapters slow down, so their speedup over a
  baseline without adapters (``full``) drops: the ratio gate's case.
- ``runner:F``: every layer of the shared layer runner (:func:`adapterdrop.models.encoder.run_layer`) ends
  with busy work lasting F times that layer's forward (planted adapter work excluded), and its backward,
  where it has one, with busy work lasting F times that layer's backward. Every variant's layers slow down
  by the same factor, forward and backward, so no ratio moves beyond what the parts the runner does not
  run (embeddings, head, loss, the optimizer step) leave: only ``regress --against`` (absolute times, A/B)
  can see it. A layer whose input needs no gradient (the first layer with adapters, whose input comes from
  frozen embeddings or layers, and whose backward is only its adapters' weight gradients) gets no backward
  busy work.
- ``lora:F``: every module a ``peft`` method adapted (a LoRA, DoRA, IA3, ... layer wrapping a frozen
  Linear; found by the peft backend when it builds a variant, :meth:`Plant.wrap_peft`) ends its forward with
  busy work lasting F times that forward (the frozen Linear and its adapter together). Only ``peft``
  variants slow down, so their speedup over ``full`` drops: the ratio gate's case for the peft backend.
- ``wide:R``: every adapter bottleneck is R times wider (``bottleneck_size``): parameters, FLOPs and the
  parameter / gradient / optimizer bytes change, which the deterministic checks catch.

The busy work is a loop on the wall clock (``time.perf_counter``), so it adds time in proportion to the
work it follows, whatever the machine's speed or load, and it allocates nothing, counts no FLOPs and saves
nothing for backward: a planted slowdown changes time only. The backward busy work is timed by two
identity autograd functions around the layer (one on its output starts the clock when the layer's backward
begins, one on its input spins when it ends); they return their input as a view and change no gradient.
On an accelerator the forward's wall time is its launch time, so there the plant scales with launch time
(it is meant for CPU tests).

Unset (the normal case), :data:`PLANT` is None and each hook costs one ``is None`` test. This module
imports torch only when a ``runner`` plant runs a layer.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

ENV = "ADAPTERDROP_PLANT"


class PlantError(ValueError):
    """``ADAPTERDROP_PLANT`` does not parse (one line)."""


class Plant:
    """The planted defects of this process (see the module docstring) and the clock of the current layer."""

    def __init__(self, adapter: float = 0.0, runner: float = 0.0, wide: int = 1, lora: float = 0.0) -> None:
        self.adapter = adapter
        self.runner = runner
        self.wide = wide
        self.lora = lora
        self._layer_start = time.perf_counter()
        self._spun = 0.0

    def __repr__(self) -> str:
        return f"Plant(adapter={self.adapter}, runner={self.runner}, wide={self.wide}, lora={self.lora})"

    def layer(self, forward: Callable[..., Any], module: Any, hidden: Any, *args: Any) -> Any:
        """Run one layer's ``forward(module, hidden, *args)``, then busy work for ``runner`` times its time;
        with a ``runner`` plant the layer's backward ends with busy work for ``runner`` times its own time."""
        self._layer_start = time.perf_counter()
        self._spun = 0.0
        if not self.runner:
            return forward(module, hidden, *args)
        marks = _backward_marks(self.runner)
        out = forward(module, marks.end(hidden), *args)
        spin(self.runner * (time.perf_counter() - self._layer_start - self._spun))
        return marks.start(out)

    def adapter_block(self) -> None:
        """At the end of an adapter block: busy work for ``adapter`` times the layer's time so far."""
        if self.adapter:
            seconds = self.adapter * (time.perf_counter() - self._layer_start - self._spun)
            spin(seconds)
            self._spun += seconds

    def wrap_peft(self, adapted: list[Any]) -> None:
        """With a ``lora`` plant, end the forward of every module in ``adapted`` (the modules a peft method
        wrapped) with busy work for ``lora`` times that forward's seconds (forward hooks)."""
        if not self.lora:
            return
        for module in adapted:
            started: list[float] = []
            module.register_forward_pre_hook(lambda *_, started=started: started.append(time.perf_counter()))
            module.register_forward_hook(
                lambda *_, started=started: spin(self.lora * (time.perf_counter() - started.pop()))
            )

    def bottleneck(self, width: int) -> int:
        """The adapter bottleneck width after the ``wide`` plant."""
        return width * self.wide


def spin(seconds: float) -> None:
    """Busy work on the wall clock for ``seconds`` (nothing allocated, no FLOPs, no autograd)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


class _BackwardMarks:
    """Two identity autograd functions around a layer: ``start`` (on its output) notes when the layer's
    backward begins, ``end`` (on its input) spins ``factor`` times the seconds since then, when it ends."""

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self.began: float | None = None
        self.start = _identity_calling(self._begin)
        self.end = _identity_calling(self._spin_since_begun)

    def _begin(self) -> None:
        self.began = time.perf_counter()

    def _spin_since_begun(self) -> None:
        if self.began is not None:
            spin(self.factor * (time.perf_counter() - self.began))
            self.began = None


def _identity_calling(on_backward: Callable[[], None]) -> Callable[[Any], Any]:
    """An autograd function that returns its input (as a view) and calls ``on_backward`` when the gradient
    passes back through it, changing nothing."""
    import torch

    class Identity(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, tensor: Any) -> Any:
            return tensor.view_as(tensor)

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            on_backward()
            return grad

    return Identity.apply


_MARKS: dict[float, _BackwardMarks] = {}


def _backward_marks(factor: float) -> _BackwardMarks:
    """The (one, shared) backward marks of a ``runner`` plant of ``factor``: layers run their backward one
    after another, so one clock serves every layer."""
    if factor not in _MARKS:
        _MARKS[factor] = _BackwardMarks(factor)
    return _MARKS[factor]


def parse_plant(text: str) -> Plant | None:
    """``adapter:0.2,runner:0.1,lora:0.2,wide:2`` -> :class:`Plant`; an empty text -> None."""
    if not text.strip():
        return None
    values: dict[str, Any] = {}
    for item in text.split(","):
        name, _, value = item.strip().partition(":")
        try:
            if name in ("adapter", "runner", "lora"):
                values[name] = float(value)
                if not values[name] >= 0:
                    raise ValueError
            elif name == "wide":
                values[name] = int(value)
                if values[name] < 1:
                    raise ValueError
            else:
                raise PlantError(f"{ENV}: unknown item '{item}'; use adapter:F, runner:F, lora:F or wide:R")
        except ValueError as exc:
            if isinstance(exc, PlantError):
                raise
            raise PlantError(f"{ENV}: bad value in '{item}' (F >= 0, R a positive integer)") from None
    return Plant(**values)


#: the planted defects of this process, or None (the normal case)
PLANT: Plant | None = parse_plant(os.environ.get(ENV, ""))
