"""AdapterFusion (Pfeiffer et al., EACL 2021): attention over the outputs of N frozen adapters.

At a layer's feed-forward output ``x`` (before residual and LayerNorm) the N adapters give ``a_i``; then

    q = W_q x,   k_i = W_k a_i,   v_i = W_v a_i,   p_i = softmax_i(q · k_i),   out = Σ_i p_i v_i

``W_v`` starts as the identity (plus N(0, 0.02²) noise), so fusion starts close to a weighted mean of the
adapter outputs, as AdapterHub initialises it. ``p_i`` averaged over tokens is adapter i's *activation*,
which pruning (AdapterDrop paper, §5) ranks adapters by.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from adapterdrop.models.adapters import AdapterBank
from adapterdrop.models.encoder import LayerPlugin


class FusionLayer(nn.Module):
    """Query from the layer output, keys and values from each adapter output, softmax over the adapters."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        for proj in (self.query, self.key, self.value):
            nn.init.normal_(proj.weight, std=0.02)
            nn.init.zeros_(proj.bias)
        with torch.no_grad():
            self.value.weight.add_(torch.eye(hidden_size))

    def forward(
        self, hidden: torch.Tensor, adapter_outputs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``hidden (B, S, h)`` and ``adapter_outputs (N, B, S, h)`` -> fused (B, S, h), weights (N, B, S)."""
        query = self.query(hidden)
        keys = self.key(adapter_outputs)
        weights = torch.softmax((keys * query).sum(-1), dim=0)
        fused = (weights.unsqueeze(-1) * self.value(adapter_outputs)).sum(0)
        return fused, weights


class FusionPlugin(LayerPlugin):
    """A layer's adapter bank plus its fusion layer, at the feed-forward output (Pfeiffer placement).

    While ``recording`` is on, the plug-in adds each adapter's mean fusion weight per call to
    ``activation_sum`` (a length-N tensor) and counts calls in ``activation_calls``.
    """

    def __init__(self, bank: AdapterBank, fusion: FusionLayer, adapter_ids: Sequence[int]) -> None:
        super().__init__()
        self.bank = bank
        self.fusion = fusion
        self.adapter_ids = list(adapter_ids)
        self.recording = False
        self.activation_sum = torch.zeros(len(self.adapter_ids))
        self.activation_calls = 0

    def after_ffn(self, hidden: torch.Tensor) -> torch.Tensor:
        fused, weights = self.fusion(hidden, self.bank(hidden, shared=True))
        if self.recording:
            self.activation_sum += weights.detach().float().mean(dim=(1, 2)).cpu()
            self.activation_calls += 1
        return fused

    def mean_activation(self) -> torch.Tensor:
        """Mean fusion weight of each adapter over the recorded calls (length N, sums to 1)."""
        if self.activation_calls == 0:
            raise RuntimeError("no calibration batch was recorded")
        return self.activation_sum / self.activation_calls

    def keep(self, positions: Sequence[int]) -> FusionPlugin:
        """A plug-in with only the adapters at ``positions`` of this bank; the fusion layer is shared."""
        return FusionPlugin(
            self.bank.select(positions), self.fusion, [self.adapter_ids[p] for p in positions]
        )
