"""AdapterFusion (Pfeiffer et al., EACL 2021) as AdapterHub computes it: ``BertFusion`` with the defaults of
``DynamicAdapterFusionConfig`` over N ``seq_bn`` (Pfeiffer) adapters at the feed-forward output.

With the sub-layer output x, its residual r and the layer's LayerNorm LN, AdapterHub's ``compose_fuse``
runs the last adapter's ``pre_forward`` once (``original_ln_before=True``, ``residual_before_ln=True``,
``query_before_ln=False``), every adapter's bottleneck on its result, ``BertFusion``, then ``post_forward``:

    h = LN(x + r)                                   # adapter input and fusion query
    u_i = f_i(h)                                    # up-projections, WITHOUT the adapter residual
    s_i = (W_q h + b_q) · (W_k u_i + b_k)           # query=True, key=True
    p = softmax_i(dropout(s))                       # temperature=False (T = 1); dropout on the scores
    c = Σ_i p_i (W_v u_i)                           # value=True, value_before_softmax=True, W_v has no bias
    y = LN((c + x) + r)                             # residual_before=False: x added after fusion

The score dropout has the model's ``attention_probs_dropout_prob`` (``dropout_prob=None``); it is inactive
in eval mode. ``W_v`` starts as the identity (``value_initialized=True``; here plus N(0, 0.02²) noise so it
is not exactly the identity), ``W_q``, ``W_k`` from N(0, 0.02²) with zero biases, as AdapterHub initialises
them. The scores and the weighted sum are batched matrix products over a ``(B, S, N, h)`` stack, AdapterHub's
layout. ``p_i`` averaged over tokens is adapter i's *activation*, which pruning (AdapterDrop paper, §5)
ranks adapters by. ``regularization=True`` is a loss term AdapterHub's trainer adds after each step
(``0.01·Σ‖I − W_v‖²``); it is not part of the forward pass and is not computed here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from adapterdrop.models.adapters import AdapterBank
from adapterdrop.models.encoder import LayerPlugin, region


class FusionLayer(nn.Module):
    """``BertFusion`` (dynamic): query from ``LN(x + r)``, keys and values from the up-projections."""

    def __init__(self, hidden_size: int, dropout: float) -> None:
        super().__init__()
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size, bias=False)
        self.dropout = nn.Dropout(dropout)
        for proj in (self.query, self.key, self.value):
            nn.init.normal_(proj.weight, std=0.02)
        for proj in (self.query, self.key):
            nn.init.zeros_(proj.bias)
        with torch.no_grad():
            self.value.weight.add_(torch.eye(hidden_size))

    def forward(
        self, query: torch.Tensor, ups: torch.Tensor, residual: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``query (B, S, h)``, up-projections ``ups (N, B, S, h)``, adapter residual x ``(B, S, h)`` ->
        ``c + x (B, S, h)`` and the fusion weights ``p (B, S, N)``."""
        stacked = ups.permute(1, 2, 0, 3)  # (B, S, N, h)
        keys = self.key(stacked)
        values = self.value(stacked)
        scores = torch.matmul(self.query(query).unsqueeze(2), keys.transpose(-2, -1)).squeeze(2)
        weights = torch.softmax(self.dropout(scores), dim=-1)
        context = torch.matmul(weights.unsqueeze(2), values).squeeze(2)
        return context + residual, weights


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

    def ffn_output(self, out: torch.Tensor, residual: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        hidden = norm(out + residual)
        ups = region("adapter", self.bank, hidden, True)
        fused, weights = region("fusion", self.fusion, hidden, ups, out)
        if self.recording:
            self.activation_sum += weights.detach().float().mean(dim=(0, 1)).cpu()
            self.activation_calls += 1
        return norm(fused + residual)

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
