"""Multi-task inference: ``parallel`` (tasks share the layers below the first adapter) and ``separate``.

``parallel:tasks=N,n=K`` answers one batch for N tasks in one pass. Layers 0..K-1 carry no adapters, and
with Pfeiffer placement layer K's adapter sits at its very end, so layers 0..K run once on the shared
batch; the first adapter forks it into N task copies (``(N, B, S, h)``), and every layer above runs on
the ``N·B`` rows. With Houlsby placement the fork happens after layer K's attention. Each task keeps its
own adapters and head. ``separate:tasks=N,n=K`` runs N single-task models one after another instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from adapterdrop.models.adapters import BANK_IMPLS, AdapterBank, Placement, bottleneck_block
from adapterdrop.models.encoder import (
    LayerPlugin,
    add_and_norm,
    encode,
    num_layers,
    plugins_by_layer,
    region,
)
from adapterdrop.variants.base import ADAPTER_OPTIONS, VariantModel, check_layers
from adapterdrop.variants.single import AdapterModel, AdapterPlugin
from adapterdrop.variants.spec import Option, VariantInfo, VariantSpec, parse_variant


class ParallelPlugin(LayerPlugin):
    """One layer's N task adapters. ``forks`` marks the layer whose first adapter splits the batch.

    Each task computes what its single-task :class:`AdapterPlugin` computes (the placement's AdapterHub
    arrangement). At the fork the adapter input (``LN(x + r)`` for Pfeiffer, ``x`` for Houlsby) is computed
    once on the shared batch and the bank's N bottlenecks fork it; x and r broadcast over the tasks.
    AdapterHub's ``Parallel`` block instead replicates x and r N times before its ``pre_forward``, so it
    computes that first ``LN(x + r)`` N times; the results are the same.
    """

    def __init__(
        self, placement: Placement, ffn: AdapterBank, attention: AdapterBank | None, fork: bool
    ) -> None:
        super().__init__()
        self.placement = placement
        self.ffn = ffn
        self.attention = attention
        self.forks = fork

    def attention_output(self, out: torch.Tensor, residual: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        if self.attention is None:
            return add_and_norm(out, residual, norm)
        bank = partial(self.attention, shared=self.forks)
        return bottleneck_block(bank, out, residual, norm, self.placement.original_ln_before)

    def ffn_output(self, out: torch.Tensor, residual: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        bank = partial(self.ffn, shared=self.forks and self.attention is None)
        return bottleneck_block(bank, out, residual, norm, self.placement.original_ln_before)


class ParallelModel(VariantModel):
    """N tasks on one frozen encoder in one pass; logits ``(N, B, C)``. Inference only."""

    supports_training = False

    def __init__(self, spec: VariantSpec, tasks: Sequence[AdapterModel], impl: str) -> None:
        super().__init__(spec)
        first = tasks[0]
        self.base = first.base
        self.num_tasks = len(tasks)
        adapter_layers = sorted(int(i) for i in first.plugins)
        self.plugins = nn.ModuleDict()
        for layer in adapter_layers:
            per_task: list[AdapterPlugin] = [task.plugins[str(layer)] for task in tasks]
            attention = None
            if per_task[0].attention is not None:
                attention = AdapterBank([p.attention for p in per_task], impl)
            ffn = AdapterBank([p.ffn for p in per_task], impl)
            self.plugins[str(layer)] = ParallelPlugin(
                per_task[0].placement, ffn, attention, fork=layer == adapter_layers[0]
            )
        self.heads = nn.ModuleList(task.head for task in tasks)
        self.impl = impl

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        plugins = plugins_by_layer(self.plugins, num_layers(self.base))
        hidden = encode(self.base, input_ids, attention_mask, plugins)
        return region("head", self._task_heads, hidden, input_ids.shape[0])

    def _task_heads(self, hidden: torch.Tensor, batch: int) -> torch.Tensor:
        """Each task's head on its rows of ``hidden``: task-major ``(N·B, S, h)``, or shared ``(B, S, h)``."""
        if hidden.shape[0] != batch:
            per_task = hidden.view(self.num_tasks, batch, *hidden.shape[1:])
        else:
            per_task = hidden.expand(self.num_tasks, *hidden.shape)
        return torch.stack(
            [head(task_hidden) for head, task_hidden in zip(self.heads, per_task, strict=True)]
        )

    def describe(self) -> dict[str, Any]:
        layers = sorted(int(i) for i in self.plugins)
        pfeiffer = self.spec["placement"] == "pfeiffer"
        shared = (layers[0] + int(pfeiffer)) if layers else num_layers(self.base)
        return {
            "tasks": self.num_tasks,
            "layers": num_layers(self.base),
            "dropped_layers": self.spec["n"],
            "shared_layers": shared,
            "shared_layers_convention": "whole layers run once on the shared batch: 0..K with Pfeiffer "
            "placement (layer K's adapter sits at its end), 0..K-1 plus layer K's attention with Houlsby",
            "bank_impl": self.impl,
            "placement": self.spec["placement"],
        }


class SeparateModel(VariantModel):
    """N single-task models run one after another on the same batch; logits ``(N, B, C)``. Inference only."""

    supports_training = False

    def __init__(self, spec: VariantSpec, tasks: Sequence[AdapterModel]) -> None:
        super().__init__(spec)
        self.tasks = nn.ModuleList(tasks)
        self.num_tasks = len(tasks)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return torch.stack(
            [region(f"task.{i}", task, input_ids, attention_mask) for i, task in enumerate(self.tasks)]
        )

    def describe(self) -> dict[str, Any]:
        return {
            "tasks": self.num_tasks,
            "dropped_layers": self.spec["n"],
            "placement": self.spec["placement"],
        }


def task_models(spec: VariantSpec, base: PreTrainedModel, seed: int) -> list[AdapterModel]:
    """The N single-task AdapterDrop models (``n`` dropped layers) that both multi-task variants run."""
    drop = check_layers(spec.name, spec["n"], num_layers(base))
    single = parse_variant(
        f"adapterdrop:n={drop},placement={spec['placement']},reduction={spec['reduction']},act={spec['act']}"
    )
    torch.manual_seed(seed)
    return [
        AdapterModel(single, base, first=drop, inference_drop=drop, seed=seed) for _ in range(spec["tasks"])
    ]


def build_parallel(
    spec: VariantSpec, config: PretrainedConfig, base: PreTrainedModel, seed: int
) -> ParallelModel:
    return ParallelModel(spec, task_models(spec, base, seed), spec["impl"])


def build_separate(
    spec: VariantSpec, config: PretrainedConfig, base: PreTrainedModel, seed: int
) -> SeparateModel:
    return SeparateModel(spec, task_models(spec, base, seed))


_TASKS = Option("tasks", int, None, "required: number of tasks N answering the same batch", minimum=1)
_DROP = Option("n", int, 0, "layers 0..n-1 carry no adapters and run once for all tasks", minimum=0)

#: the multi-task inference variants (registered by the native backend)
VARIANTS = (
    VariantInfo(
        "parallel",
        "N task adapters answer one batch in one pass; layers below the first adapter run once (inference)",
        (
            _TASKS,
            _DROP,
            Option(
                "impl",
                str,
                "bmm",
                "bmm: N adapters as one batched matmul; loop: one adapter after another",
                choices=BANK_IMPLS,
            ),
            *ADAPTER_OPTIONS,
        ),
        build_parallel,
        inference_only=True,
    ),
    VariantInfo(
        "separate",
        "N single-task adapter models run one after another on the same batch (inference)",
        (_TASKS, _DROP, *ADAPTER_OPTIONS),
        build_separate,
        inference_only=True,
    ),
)
