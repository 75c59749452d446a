"""The harness's step, in its phases: forward, backward, optimizer (each a profiler range).

The profiler runs the step that :func:`adapterdrop.measure.prepare.prepare_step` prepared, split where a
reader wants to see it split. Inference is ``prepared.step()`` itself, as the phase ``forward``. Training is
what ``prepared.step()`` runs, one part at a time, with the functions the step is defined by
(:mod:`adapterdrop.measure.step`): ``loss = prepared.loss()`` (forward), ``backward(loss)`` (backward),
``update(optimizer)`` (optimizer); a test pins that this updates the parameters exactly as
``prepared.step()`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch.autograd.profiler import record_function

from adapterdrop.measure import step as steps
from adapterdrop.profile.regions import RegionTracer

if TYPE_CHECKING:
    from adapterdrop.measure.types import PreparedStep

PHASES = ("forward", "backward", "optimizer")


class PhasedStep:
    """One step of ``prepared`` as named phases; ``tracer.phase`` names the phase running."""

    def __init__(self, prepared: PreparedStep, tracer: RegionTracer) -> None:
        self.prepared = prepared
        self.tracer = tracer
        self._loss: torch.Tensor | None = None

    @property
    def phases(self) -> tuple[str, ...]:
        """``forward`` for inference; ``forward``, ``backward``, ``optimizer`` for training."""
        return PHASES if self.prepared.loss is not None else PHASES[:1]

    def run_phase(self, phase: str) -> None:
        """Run one phase (phases run in the order of :attr:`phases`)."""
        self.tracer.phase = phase
        prepared = self.prepared
        if phase == "forward":
            if prepared.loss is None:
                prepared.step()
            else:
                self._loss = prepared.loss()
        elif phase == "backward":
            assert self._loss is not None, "backward before forward"
            loss, self._loss = self._loss, None
            steps.backward(loss)
            self.tracer.finish_backward()
        else:
            assert prepared.optimizer is not None
            steps.update(prepared.optimizer)
        self.tracer.phase = ""

    def __call__(self) -> None:
        """One whole step, each phase inside a profiler range named after it."""
        for phase in self.phases:
            with record_function(phase):
                self.run_phase(phase)

    def each_phase(self) -> list[tuple[str, Callable[[], None]]]:
        """``(phase, run it)`` for the phases of one step, in order (to measure them one at a time)."""
        return [(phase, lambda phase=phase: self.run_phase(phase)) for phase in self.phases]
