"""``fusion``: AdapterFusion over N frozen adapters, with AdapterDrop (``n``) and pruning (``keep``).

The adapters are AdapterHub ``seq_bn`` (Pfeiffer) bottlenecks and the fusion layer is AdapterHub's
``BertFusion`` with the ``DynamicAdapterFusionConfig`` defaults (formula: :mod:`adapterdrop.models.fusion`).
Training updates the fusion layers and the head; the adapters and the encoder stay frozen.
Pruning (AdapterDrop paper, §5): run calibration batches, average each adapter's fusion weight over
the tokens of every batch, and keep the ``keep`` adapters with the highest average. The pruned adapters
are removed from the banks, so they are not computed at all.

``prune=global`` (the default) ranks adapters by their activation averaged over all fusion layers and
keeps the same adapters in every layer: the pruned model needs only ``keep`` adapters in storage and in
deployment, which is what the paper's "keeping 2 of 8 adapters" means. ``prune=layer`` lets each layer
keep its own top ``keep``; it costs the same compute and may keep more distinct adapters in total.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from adapterdrop.errors import VariantError
from adapterdrop.inputs import make_batch
from adapterdrop.models.adapters import (
    BANK_IMPLS,
    PLACEMENTS,
    AdapterBank,
    BottleneckAdapter,
    bottleneck_size,
)
from adapterdrop.models.encoder import encode, num_layers, plugins_by_layer, region
from adapterdrop.models.fusion import FusionLayer, FusionPlugin
from adapterdrop.models.heads import ClassificationHead
from adapterdrop.variants.base import ADAPTER_OPTIONS, NUM_LABELS, VariantModel, check_layers
from adapterdrop.variants.spec import Option, VariantInfo, VariantSpec

#: size of the random calibration batches the CLI uses when pruning (batch, sequence length)
CALIBRATION_SHAPE = (8, 64)


class FusionModel(VariantModel):
    """AdapterFusion over a bank of adapters in layers ``n..L-1``, plus one classification head."""

    def __init__(
        self,
        spec: VariantSpec,
        base: PreTrainedModel,
        plugins: dict[int, FusionPlugin],
        head: ClassificationHead,
    ) -> None:
        super().__init__(spec)
        self.base = base
        self.plugins = nn.ModuleDict({str(i): p for i, p in plugins.items()})
        self.head = head
        self.scores: dict[int, list[float]] | None = None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        plugins = plugins_by_layer(self.plugins, num_layers(self.base))
        return region("head", self.head, encode(self.base, input_ids, attention_mask, plugins))

    def calibrate(self, batches: Iterable[torch.Tensor]) -> dict[int, torch.Tensor]:
        """Mean fusion weight of every adapter per layer over ``batches`` of token ids (eval, no grad)."""
        was_training = self.training
        self.eval()
        for plugin in self.plugins.values():
            plugin.recording, plugin.activation_sum, plugin.activation_calls = (
                True,
                plugin.activation_sum * 0,
                0,
            )
        try:
            with torch.no_grad():
                for input_ids in batches:
                    self(input_ids)
        finally:
            for plugin in self.plugins.values():
                plugin.recording = False
            self.train(was_training)
        return {int(i): plugin.mean_activation() for i, plugin in self.plugins.items()}

    def pruned(self, scores: dict[int, torch.Tensor], keep: int, mode: str, spec: VariantSpec) -> FusionModel:
        """A model keeping the ``keep`` most activated adapters (``mode`` global or layer); shares modules."""
        if mode == "global":
            ranking = torch.stack(list(scores.values())).mean(0)
            chosen = {layer: _top(ranking, keep) for layer in scores}
        else:
            chosen = {layer: _top(layer_scores, keep) for layer, layer_scores in scores.items()}
        plugins = {layer: self.plugins[str(layer)].keep(chosen[layer]) for layer in scores}
        model = FusionModel(spec, self.base, plugins, self.head)
        model.scores = {layer: [round(float(s), 6) for s in values] for layer, values in scores.items()}
        return model

    def describe(self) -> dict[str, Any]:
        kept = {int(i): plugin.adapter_ids for i, plugin in self.plugins.items()}
        info: dict[str, Any] = {
            "adapters": self.spec["adapters"],
            "dropped_layers": self.spec["n"],
            "kept_adapters": kept,
            "prune": self.spec["prune"],
        }
        if self.scores is not None:
            info["activation_scores"] = self.scores
        return info


def _top(scores: torch.Tensor, keep: int) -> list[int]:
    """Indices of the ``keep`` largest scores, in ascending index order (ties: lower index first)."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    return sorted(order[:keep])


def build_unpruned(spec: VariantSpec, base: PreTrainedModel, seed: int) -> FusionModel:
    """AdapterFusion over ``adapters`` fresh adapters per layer from layer ``n`` up, adapters frozen."""
    layers = num_layers(base)
    drop = check_layers(spec.name, spec["n"], layers)
    hidden = base.config.hidden_size
    bottleneck = bottleneck_size(hidden, spec["reduction"])
    torch.manual_seed(seed)
    plugins = {}
    for layer in range(drop, layers):
        adapters = [BottleneckAdapter(hidden, bottleneck, spec["act"]) for _ in range(spec["adapters"])]
        bank = AdapterBank(adapters, spec["impl"]).requires_grad_(False)
        fusion = FusionLayer(hidden, base.config.attention_probs_dropout_prob)
        plugins[layer] = FusionPlugin(bank, fusion, range(spec["adapters"]))
    return FusionModel(spec, base, plugins, ClassificationHead(hidden, NUM_LABELS))


def calibration_batches(
    config: PretrainedConfig, count: int, seed: int, device: torch.device | str = "cpu"
) -> list[torch.Tensor]:
    """``count`` random token batches of :data:`CALIBRATION_SHAPE` (sequence capped by the model)."""
    batch, seq = CALIBRATION_SHAPE
    seq = min(seq, config.max_position_embeddings - 2)
    seeds = range(seed + 1000, seed + 1000 + count)
    return [make_batch(config.vocab_size, batch, seq, str(device), seed=s).input_ids for s in seeds]


def build_fusion(
    spec: VariantSpec, config: PretrainedConfig, base: PreTrainedModel, seed: int
) -> FusionModel:
    keep = spec["keep"] if spec["keep"] is not None else spec["adapters"]
    if not 1 <= keep <= spec["adapters"]:
        raise VariantError(
            f"keep={keep} is out of range for fusion over {spec['adapters']} adapters (1..{spec['adapters']})"
        )
    model = build_unpruned(spec, base, seed)
    if keep == spec["adapters"] or not model.plugins:
        return model
    weights = next(base.parameters())  # calibrate where and in the dtype the encoder already is
    model.to(weights.device, weights.dtype)
    scores = model.calibrate(calibration_batches(config, spec["calib"], seed, weights.device))
    return model.pruned(scores, keep, spec["prune"], spec)


def _fusion_option(option: Option) -> Option:
    """The adapter options of fusion: its adapters are always ``seq_bn`` (Pfeiffer), so ``act`` defaults to
    relu outright."""
    if option.name != "act":
        return option
    help_text = "non-linearity of the bottleneck (default relu, AdapterHub seq_bn's)"
    return dataclasses.replace(option, default=PLACEMENTS["pfeiffer"].activation, derive=None, help=help_text)


#: AdapterFusion (registered by the native backend)
VARIANTS = (
    VariantInfo(
        "fusion",
        "AdapterFusion over N frozen adapters per layer; keep=k prunes to the k most activated adapters",
        (
            Option("adapters", int, None, "required: number of adapters N fused in every layer", minimum=1),
            Option("keep", int, None, "keep the k most activated adapters (default: all N)", minimum=1),
            Option("n", int, 0, "layers 0..n-1 carry no adapters and no fusion (AdapterDrop)", minimum=0),
            Option(
                "prune",
                str,
                "global",
                "global: same k adapters in every layer; layer: top k per layer",
                choices=("global", "layer"),
            ),
            Option(
                "calib", int, 4, "random calibration batches (8 x 64 tokens) used to rank adapters", minimum=1
            ),
            Option("impl", str, "bmm", "how the N adapters run: bmm (batched) or loop", choices=BANK_IMPLS),
            *[_fusion_option(o) for o in ADAPTER_OPTIONS if o.name != "placement"],
        ),
        build_fusion,
    ),
)
