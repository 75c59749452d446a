"""The one definition of a step: its forward, its loss, its backward and its optimizer update.

Every place that runs a variant's step builds it from these functions: the eager step of
:mod:`adapterdrop.measure.prepare`, the compiled and graphed steps of :mod:`adapterdrop.measure.execution`,
the profiler's phases (:mod:`adapterdrop.profile.step`) and the data-parallel step
(:mod:`adapterdrop.distributed.wrap`). A training step is ``backward(loss()); update(optimizer)``:
``loss.backward(); optimizer.step(); optimizer.zero_grad(set_to_none=True)`` with AdamW in its fastest
implementation (:func:`make_optimizer`). Inference is :func:`forward` under ``torch.inference_mode()``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from adapterdrop.inputs import Batch
from adapterdrop.scenario import Scenario
from adapterdrop.variants.base import VariantModel

TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
#: seed of the encoder, the variants' adapters and heads, and the input batch
SEED = 0


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


def forward(model: VariantModel, batch: Batch) -> torch.Tensor:
    """The variant's logits for the batch: ``(B, C)``, or ``(T, B, C)`` for T tasks."""
    return model(batch.input_ids)


def loss(model: VariantModel, batch: Batch) -> torch.Tensor:
    """The forward of a training step: the variant's training loss on the batch (a scalar)."""
    return model.loss(batch.input_ids, batch.labels)


def backward(value: torch.Tensor) -> None:
    """The backward of a training step: gradients of ``value`` for every trainable parameter."""
    value.backward()


def update(optimizer: torch.optim.Optimizer) -> None:
    """The optimizer part of a training step: one step, then the gradients set to None."""
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def train_step(loss_fn: Callable[[], torch.Tensor], optimizer: torch.optim.Optimizer) -> None:
    """One training step: ``backward(loss_fn()); update(optimizer)``."""
    backward(loss_fn())
    update(optimizer)
