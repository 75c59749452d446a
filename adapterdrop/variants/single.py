"""Single-task variants: ``full``, ``adapter`` and ``adapterdrop`` (specialized or robust)."""

from __future__ import annotations

import contextlib
import copy
import random
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from adapterdrop.errors import VariantError
from adapterdrop.models.adapters import (
    PLACEMENTS,
    BottleneckAdapter,
    Placement,
    bottleneck_block,
    bottleneck_size,
)
from adapterdrop.models.encoder import (
    LayerPlugin,
    add_and_norm,
    encode,
    num_layers,
    plugins_by_layer,
    region,
)
from adapterdrop.models.heads import ClassificationHead
from adapterdrop.variants.base import ADAPTER_OPTIONS, NUM_LABELS, VariantModel, check_layers, logits_loss
from adapterdrop.variants.spec import Option, VariantInfo, VariantSpec


class FullModel(VariantModel):
    """Full fine-tuning: its own copy of the encoder, every parameter trainable."""

    def __init__(self, spec: VariantSpec, base: PreTrainedModel) -> None:
        super().__init__(spec)
        self.base = copy.deepcopy(base).requires_grad_(True)
        self.head = ClassificationHead(base.config.hidden_size, NUM_LABELS)
        self._no_plugins = [None] * num_layers(base)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return region("head", self.head, encode(self.base, input_ids, attention_mask, self._no_plugins))


class AdapterPlugin(LayerPlugin):
    """One layer's adapters, wired in as AdapterHub's config for ``placement`` does (see
    :mod:`adapterdrop.models.adapters`): after the feed-forward block, and after attention for Houlsby."""

    def __init__(
        self, placement: Placement, ffn: BottleneckAdapter, attention: BottleneckAdapter | None = None
    ) -> None:
        super().__init__()
        if (attention is not None) != placement.attention:
            raise ValueError(f"placement {placement.name} takes {int(placement.attention) + 1} adapter(s)")
        self.placement = placement
        self.ffn = ffn
        self.attention = attention

    def attention_output(self, out: torch.Tensor, residual: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        if self.attention is None:
            return add_and_norm(out, residual, norm)
        return bottleneck_block(self.attention, out, residual, norm, self.placement.original_ln_before)

    def ffn_output(self, out: torch.Tensor, residual: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        return bottleneck_block(self.ffn, out, residual, norm, self.placement.original_ln_before)


def make_plugin(hidden: int, spec: VariantSpec) -> AdapterPlugin:
    """A fresh (randomly initialised) adapter plug-in for the placement, reduction and act of ``spec``."""
    placement = PLACEMENTS[spec["placement"]]
    bottleneck = bottleneck_size(hidden, spec["reduction"])
    attention = BottleneckAdapter(hidden, bottleneck, spec["act"]) if placement.attention else None
    return AdapterPlugin(placement, BottleneckAdapter(hidden, bottleneck, spec["act"]), attention)


class AdapterModel(VariantModel):
    """A frozen shared encoder with adapters in layers ``first..L-1`` and a trainable head.

    ``inference_drop`` layers at the bottom run without their adapters in ``forward``. With ``robust``,
    every ``loss`` call in training mode draws the number of dropped layers uniformly from
    ``[0, robust_max]`` with a seeded generator (robust AdapterDrop).
    """

    def __init__(
        self,
        spec: VariantSpec,
        base: PreTrainedModel,
        first: int = 0,
        inference_drop: int = 0,
        robust_max: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(spec)
        self.base = base
        layers = num_layers(base)
        self.plugins = nn.ModuleDict(
            {str(i): make_plugin(base.config.hidden_size, spec) for i in range(first, layers)}
        )
        self.head = ClassificationHead(base.config.hidden_size, NUM_LABELS)
        self.inference_drop = inference_drop
        self.robust_max = robust_max
        self.stochastic = robust_max is not None
        self._draws = random.Random(seed)
        self._fixed: int | None = None
        self.drawn: list[int] = []

    def layer_plugins(self, drop: int) -> list[LayerPlugin | None]:
        """Plug-ins per layer with the lowest ``drop`` layers left out."""
        return plugins_by_layer(self.plugins, num_layers(self.base), drop)

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, drop: int) -> torch.Tensor:
        hidden = encode(self.base, input_ids, attention_mask, self.layer_plugins(drop))
        return region("head", self.head, hidden)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.logits(input_ids, attention_mask, self.inference_drop)

    def loss(self, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        drop = self.inference_drop
        if self.robust_max is not None and self.training and self._fixed is not None:
            drop = self._fixed  # pinned, not drawn: nothing recorded (a compiled step stays one graph per n)
        elif self.robust_max is not None and self.training:
            drop = self._draws.randint(0, self.robust_max)
            self.drawn.append(drop)
        return logits_loss(self.logits(input_ids, None, drop), labels)

    def draw_values(self) -> tuple[int, ...]:
        return tuple(range(self.robust_max + 1)) if self.robust_max is not None else ()

    @contextlib.contextmanager
    def fixed_draw(self, value: int) -> Iterator[None]:
        before, self._fixed = self._fixed, value
        try:
            yield
        finally:
            self._fixed = before

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "adapter_layers": sorted(int(i) for i in self.plugins),
            "dropped_layers": self.inference_drop,
            "placement": self.spec["placement"],
            "activation": self.spec["act"],
            "bottleneck": bottleneck_size(self.base.config.hidden_size, self.spec["reduction"]),
        }
        if self.robust_max is not None:
            info["robust_draw_range"] = [0, self.robust_max]
        return info


def build_full(spec: VariantSpec, config: PretrainedConfig, base: PreTrainedModel, seed: int) -> FullModel:
    torch.manual_seed(seed)
    return FullModel(spec, base)


def build_adapter(
    spec: VariantSpec, config: PretrainedConfig, base: PreTrainedModel, seed: int
) -> AdapterModel:
    torch.manual_seed(seed)
    return AdapterModel(spec, base, seed=seed)


def build_adapterdrop(
    spec: VariantSpec, config: PretrainedConfig, base: PreTrainedModel, seed: int
) -> AdapterModel:
    layers = num_layers(base)
    torch.manual_seed(seed)
    if spec["robust"]:
        high = layers - 1 if spec["max"] is None else check_layers(spec.name, spec["max"], layers, "max")
        drop = check_layers(spec.name, spec["n"] or 0, layers)
        return AdapterModel(spec, base, first=0, inference_drop=drop, robust_max=high, seed=seed)
    if spec["n"] is None:
        raise VariantError("variant 'adapterdrop' needs n=K (specialized) or robust")
    drop = check_layers(spec.name, spec["n"], layers)
    return AdapterModel(spec, base, first=drop, inference_drop=drop, seed=seed)


#: the single-task variants, in the order they are listed (registered by the native backend)
VARIANTS = (
    VariantInfo("full", "full fine-tuning: every parameter trainable, no adapters", (), build_full),
    VariantInfo(
        "adapter",
        "bottleneck adapter in every layer; encoder frozen, adapters + head train",
        ADAPTER_OPTIONS,
        build_adapter,
    ),
    VariantInfo(
        "adapterdrop",
        "no adapters in layers 0..n-1 (specialized), or n drawn per training batch (robust)",
        (
            Option(
                "n",
                int,
                None,
                "layers 0..n-1 carry no adapter (0..L); robust: n used at inference",
                minimum=0,
            ),
            Option("robust", bool, False, "draw n uniformly from [0, max] for every training batch"),
            Option("max", int, None, "robust: largest n drawn (default L-1, the paper's [0, 11])", minimum=0),
            *ADAPTER_OPTIONS,
        ),
        build_adapterdrop,
    ),
)
