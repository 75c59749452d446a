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

import torch

from adapterdrop.backends import build_variant
from adapterdrop.errors import InferenceOnlyError
from adapterdrop.families import build_base, model_config
from adapterdrop.inputs import make_batch
from adapterdrop.measure import step as steps
from adapterdrop.measure.execution import apply_exec
from adapterdrop.measure.step import SEED, TORCH_DTYPES, make_optimizer, precision_context
from adapterdrop.measure.types import GroupContext, PreparedStep
from adapterdrop.scenario import Scenario
from adapterdrop.workloads import prepare_step as workload_step
from adapterdrop.workloads.train import prepare as training_step

__all__ = [
    "SEED",
    "TORCH_DTYPES",
    "GroupContext",
    "InferenceOnlyError",
    "PreparedStep",
    "group_context",
    "make_optimizer",
    "precision_context",
    "prepare_step",
]


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


def prepare_step(scenario: Scenario, context: GroupContext) -> PreparedStep:
    """Build ``scenario.variant`` on the shared encoder of ``context`` and return its step in the scenario's
    execution mode (not timed yet; a compiled or graphed step is compiled or captured already).

    Raises :class:`InferenceOnlyError` for a train scenario of an inference-only variant, and
    ``RuntimeError`` for a train scenario of a variant without trainable parameters.
    """
    return apply_exec(_eager_step(scenario, context))


def _eager_step(scenario: Scenario, context: GroupContext) -> PreparedStep:
    if (prepared := workload_step(scenario, context)) is not None:  # a decoder's (adapterdrop.workloads)
        return prepared
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
                steps.forward(model, batch)

        return PreparedStep(scenario, model, infer, None, None, None, batch, context.device)

    return training_step(scenario, model, context)  # the one training step of every family
