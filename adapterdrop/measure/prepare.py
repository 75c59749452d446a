"""The one public way to build a variant and prepare the step that is timed, counted and profiled.

Everything that runs a variant's step (the group runner, the bench suites, the profiler, the regression
gate) goes through here, so they all run the same step:

- :func:`group_context` builds what every variant of a group shares: the model config, one frozen encoder
  with random weights (seed 0; cast to the dtype for native precision; on the device) and one input batch;
- :func:`prepare_step` builds one variant on that encoder and returns a :class:`PreparedStep`: ``step()``
  is one forward under ``torch.inference_mode()`` (infer, eval mode) or one training step
  ``loss.backward(); optimizer.step(); optimizer.zero_grad(set_to_none=True)`` (train, train mode) with
  AdamW in its fastest implementation (fused where supported, else foreach) over the trainable parameters.
  The scenario's execution mode (``exec``: compile, cudagraph) is applied last by
  :func:`adapterdrop.measure.execution.apply_exec`: compiled or captured before ``prepare_step`` returns.

Nothing here times or counts; see :mod:`adapterdrop.measure.runner`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from transformers import PretrainedConfig, PreTrainedModel

from adapterdrop.errors import AdapterDropError
from adapterdrop.inputs import Batch, make_batch
from adapterdrop.models.presets import model_config
from adapterdrop.scenario import Scenario
from adapterdrop.variants import VariantModel, build_base, build_variant

if TYPE_CHECKING:
    from adapterdrop.measure.execution import Execution

TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
#: seed of the encoder, the variants' adapters and heads, and the input batch
SEED = 0


class InferenceOnlyError(AdapterDropError):
    """A train-phase scenario of a variant that only runs inference (parallel, separate)."""


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

    ``step()`` runs one step (see the module docstring). ``loss()`` is the forward of a training step
    (None for infer), always eager. ``optimizer`` is None for infer. ``execution`` says how a compiled or
    graphed step was made (None: eager).
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


def group_context(scenario: Scenario) -> GroupContext:
    """Config, frozen encoder (seed :data:`SEED`, on the device, in the dtype for native precision) and
    the input batch of ``scenario``'s group."""
    device = torch.device(scenario.device)
    config = model_config(scenario.model)
    torch.manual_seed(SEED)
    base = build_base(config, seed=SEED)
    dtype = TORCH_DTYPES[scenario.dtype] if scenario.precision == "native" else None
    base.to(device=device, dtype=dtype)
    batch = make_batch(config.vocab_size, scenario.batch_size, scenario.seq_len, scenario.device, seed=SEED)
    return GroupContext(config, base, batch, device)


def make_optimizer(params: list[torch.nn.Parameter]) -> tuple[torch.optim.Optimizer, str]:
    """AdamW in its fastest implementation for these parameters: fused where supported, else foreach."""
    try:
        return torch.optim.AdamW(params, lr=1e-4, fused=True), "AdamW(fused)"
    except RuntimeError:
        return torch.optim.AdamW(params, lr=1e-4, foreach=True), "AdamW(foreach)"


def precision_context(scenario: Scenario) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of the context a step runs in: ``torch.autocast`` for autocast precision, else nothing."""
    if scenario.precision == "autocast":
        device_type = torch.device(scenario.device).type
        return lambda: torch.autocast(device_type, dtype=TORCH_DTYPES[scenario.dtype])
    return contextlib.nullcontext


def prepare_step(scenario: Scenario, context: GroupContext) -> PreparedStep:
    """Build ``scenario.variant`` on the shared encoder of ``context`` and return its step in the scenario's
    execution mode (not timed yet; a compiled or graphed step is compiled or captured already).

    Raises :class:`InferenceOnlyError` for a train scenario of an inference-only variant, and
    ``RuntimeError`` for a train scenario of a variant without trainable parameters.
    """
    from adapterdrop.measure.execution import apply_exec  # it builds on this module's PreparedStep

    return apply_exec(_eager_step(scenario, context))


def _eager_step(scenario: Scenario, context: GroupContext) -> PreparedStep:
    model = build_variant(scenario.variant, context.config, base=context.base, seed=SEED)
    if scenario.phase == "train" and not model.supports_training:
        raise InferenceOnlyError(f"{scenario.variant} is an inference-only variant")
    if scenario.precision == "native":
        model.to(device=context.device, dtype=TORCH_DTYPES[scenario.dtype])
    else:
        model.to(device=context.device)
    precision = precision_context(scenario)
    batch = context.batch
    if scenario.phase == "infer":
        model.eval()

        def infer() -> None:
            with torch.inference_mode(), precision():
                model(batch.input_ids)

        return PreparedStep(scenario, model, infer, None, None, None, batch, context.device)

    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise RuntimeError("the variant has no trainable parameters")
    model.train()
    optimizer, optimizer_name = make_optimizer(trainable)

    def loss() -> torch.Tensor:
        with precision():
            return model.loss(batch.input_ids, batch.labels)

    def train() -> None:
        loss().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return PreparedStep(scenario, model, train, loss, optimizer, optimizer_name, batch, context.device)
