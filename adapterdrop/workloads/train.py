"""The decoder family's ``train``: the causal-LM loss over B x S tokens and an AdamW step.

The loss is what `transformers` computes from ``labels`` = the input ids: next-token cross entropy over
the S - 1 shifted positions of each sequence, in fp32. A step is
:func:`adapterdrop.measure.step.train_step` (forward, backward, AdamW in its fastest implementation over the
trainable parameters, gradients set to None), as every other training step. It produces B sequences of S
tokens (the tokens trained on).
"""

from __future__ import annotations

import torch

from adapterdrop.measure import step as steps
from adapterdrop.measure.types import GroupContext, PreparedStep
from adapterdrop.scenario import Scenario
from adapterdrop.variants.base import VariantModel
from adapterdrop.workloads.base import Workload


def prepare(scenario: Scenario, model: VariantModel, context: GroupContext) -> PreparedStep:
    """The training step of ``model`` on the group's batch (train mode): ``model.loss`` (the causal-LM loss
    of a decoder, the classification loss of an encoder's variant), backward and AdamW; every family's
    training step is built here (:mod:`adapterdrop.measure.prepare` calls it for the encoders)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise RuntimeError("the variant has no trainable parameters")
    model.train()
    optimizer, optimizer_name = steps.make_optimizer(trainable)
    precision = steps.precision_context(scenario)
    batch = context.batch

    def loss() -> torch.Tensor:
        with precision():
            return steps.loss(model, batch)

    def train() -> None:
        steps.train_step(loss, optimizer)

    return PreparedStep(scenario, model, train, loss, optimizer, optimizer_name, batch, context.device)


WORKLOAD = Workload(
    "train",
    "decoder",
    "causal-LM loss over B x S tokens, backward and a fused AdamW step over the trainable parameters",
    trains=True,
    prepare=prepare,
)
