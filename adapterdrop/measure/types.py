"""The data types of a prepared step, apart from the code that builds, runs, times or counts it.

:class:`GroupContext` (what the variants of one group share), :class:`PreparedStep` (a built variant and
its step) and :class:`Execution` (how a compiled or graphed step was made) live here so that the builders
(:mod:`adapterdrop.measure.prepare`, :mod:`adapterdrop.measure.execution`) and the readers
(:mod:`adapterdrop.measure.memory`, :mod:`adapterdrop.measure.flops`, the profiler, DDP) import them
without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import PretrainedConfig, PreTrainedModel

from adapterdrop.inputs import Batch
from adapterdrop.scenario import Scenario
from adapterdrop.variants.base import VariantModel


@dataclass(frozen=True)
class GroupContext:
    """What the variants of one group share: config, frozen encoder, input batch, device."""

    config: PretrainedConfig
    base: PreTrainedModel
    batch: Batch
    device: torch.device


@dataclass
class PreparedStep:
    """A built variant and the step that is measured.

    ``step()`` runs one step (see :mod:`adapterdrop.measure.prepare`). ``loss()`` is the forward of a
    training step (None for infer), always eager. ``optimizer`` is None for infer. ``execution`` says how
    a compiled or graphed step was made (None: eager).
    """

    scenario: Scenario
    model: VariantModel
    step: Callable[[], None]
    loss: Callable[[], torch.Tensor] | None
    optimizer: torch.optim.Optimizer | None
    optimizer_name: str | None
    batch: Batch
    device: torch.device
    execution: Execution | None = None

    @property
    def draws(self) -> tuple[int, ...]:
        """The values a training step of a stochastic variant draws from (empty otherwise)."""
        return tuple(self.model.draw_values()) if self.loss is not None else ()

    def timed(self) -> tuple[Callable[[], None], int]:
        """What is timed, and how many steps one call of it runs.

        A deterministic step is timed as it is (one step per call). A stochastic one is timed as a cycle
        that takes one step per value it draws, each pinned once in ascending order, so a sample's mean
        step time is the exact expectation over the equally likely draws (as its FLOPs and memory are),
        not the mean of whichever values the random draws happened to give.
        """
        if not self.draws:
            return self.step, 1
        model, step, values = self.model, self.step, self.draws

        def cycle() -> None:
            for value in values:
                with model.fixed_draw(value):
                    step()

        return cycle, len(values)

    @property
    def trainable(self) -> list[torch.nn.Parameter]:
        """The parameters the optimizer updates (empty for infer)."""
        return [p for p in self.model.parameters() if p.requires_grad] if self.optimizer else []

    def counts(self) -> dict[str, Any]:
        """Parameter counts for a record: total (a shared encoder once) and trainable."""
        return {
            "params_total": sum(p.numel() for p in self.model.parameters()),
            "params_trainable": sum(p.numel() for p in self.model.parameters() if p.requires_grad),
        }


@dataclass
class Execution:
    """How a non-eager step was made; what the harness reads from it.

    ``eager`` is the eager step it was made from (same model; FLOPs are counted on it). ``setup_s`` is the
    seconds spent compiling or capturing (the setup steps included). ``outputs()`` runs one step of this
    mode and returns what it computed (see :func:`adapterdrop.measure.execution.step_outputs`). ``memory``
    holds the record's memory fields where they were read at capture (cudagraph), else None (probe the
    step). ``compiled_entries()`` counts the graphs dynamo holds for the step's entry (compile only).
    """

    eager: PreparedStep
    setup_s: float
    outputs: Callable[[], dict[str, torch.Tensor]]
    draws: tuple[int, ...] = ()
    memory: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    compiled_entries: Callable[[], int] | None = None
    entries_after_setup: int = 0

    @property
    def expected_graphs(self) -> int:
        """One graph per drawn value; one for a deterministic step."""
        return max(1, len(self.draws))

    def recompiles(self) -> int | None:
        """Compilations of the step's entry beyond one per drawn value, so far (None: not compiled)."""
        if self.compiled_entries is None:
            return None
        return max(0, self.compiled_entries() - self.expected_graphs)

    def compiles_after_setup(self) -> int:
        """Compilations since setup ended: they ran inside warm-up, memory probe or timed steps."""
        return self.compiled_entries() - self.entries_after_setup if self.compiled_entries else 0

    def fields(self) -> dict[str, Any]:
        """The record's fields: ``exec_setup_s``, ``exec_recompiles``, ``exec_info``."""
        info = {**self.info, "graphs_per_draw": bool(self.draws), "draws": list(self.draws)}
        if self.compiled_entries is not None:
            info["compiles_after_setup"] = self.compiles_after_setup()
        return {"exec_setup_s": self.setup_s, "exec_recompiles": self.recompiles(), "exec_info": info}

    def noise(self) -> list[str]:
        """Why this mode's timing is not to be stated as a result (a compile after setup)."""
        late = self.compiles_after_setup()
        return [f"{late} compilation(s) after setup, inside warm-up or timed steps"] if late else []
