"""Bottleneck adapters: one adapter, and a bank of N adapters that run side by side.

An adapter maps ``x -> x + W_up · act(W_down · x + b_down) + b_up`` with ``W_down: h -> b`` and
``W_up: b -> h``, where ``b = h / reduction_factor``. It holds ``2·h·b + b + h`` parameters.
Weights are drawn from N(0, 0.02²) like BERT's, so an adapter is never the identity by construction
(tests that compare variants would otherwise pass for the wrong reason).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "swish": nn.SiLU,
}

#: How a bank of N adapters runs: ``bmm`` keeps stacked weights and runs one batched matrix product per
#: projection; ``loop`` keeps N adapter modules and runs them one after another.
BANK_IMPLS = ("bmm", "loop")


def _init(weight: torch.Tensor, bias: torch.Tensor) -> None:
    nn.init.normal_(weight, std=0.02)
    nn.init.normal_(bias, std=0.02)


class BottleneckAdapter(nn.Module):
    """One bottleneck adapter with its residual: (..., h) -> (..., h)."""

    def __init__(self, hidden_size: int, bottleneck: int, activation: str = "relu") -> None:
        super().__init__()
        self.down = nn.Linear(hidden_size, bottleneck)
        self.act = ACTIVATIONS[activation]()
        self.up = nn.Linear(bottleneck, hidden_size)
        _init(self.down.weight, self.down.bias)
        _init(self.up.weight, self.up.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.up(self.act(self.down(hidden)))


def bottleneck_size(hidden_size: int, reduction_factor: int) -> int:
    """Bottleneck width b = h / reduction_factor (at least 1)."""
    return max(1, hidden_size // reduction_factor)


class AdapterBank(nn.Module):
    """N adapters at one position.

    Shared input ``(B, S, h)`` -> ``(N, B, S, h)``: every adapter sees the same tensor (where tasks fork,
    or the input of an AdapterFusion layer). Per-task input, task-major ``(N·B, S, h)`` or ``(N, B, S, h)``
    -> the same shape: adapter i sees the i-th block of rows. Both implementations compute the same
    function; ``bmm`` launches two batched matrix products instead of 2·N small ones.
    """

    def __init__(self, adapters: Sequence[BottleneckAdapter], impl: str = "bmm") -> None:
        super().__init__()
        if impl not in BANK_IMPLS:
            raise ValueError(f"unknown bank impl '{impl}'; valid: {', '.join(BANK_IMPLS)}")
        self.impl = impl
        self.size = len(adapters)
        self.act = type(adapters[0].act)()
        if impl == "loop":
            self.adapters = nn.ModuleList(adapters)
        else:
            self.w_down = nn.Parameter(torch.stack([a.down.weight.detach().t() for a in adapters]))
            self.b_down = nn.Parameter(torch.stack([a.down.bias.detach()[None] for a in adapters]))
            self.w_up = nn.Parameter(torch.stack([a.up.weight.detach().t() for a in adapters]))
            self.b_up = nn.Parameter(torch.stack([a.up.bias.detach()[None] for a in adapters]))
            self.requires_grad_(adapters[0].down.weight.requires_grad)

    def adapter(self, index: int) -> BottleneckAdapter:
        """A standalone copy of adapter ``index`` (same weights)."""
        if self.impl == "loop":
            source = self.adapters[index]
            copy = BottleneckAdapter(source.down.in_features, source.down.out_features)
            copy.act = type(source.act)()
            copy.load_state_dict(source.state_dict())
            return copy.to(source.down.weight.device, source.down.weight.dtype)
        hidden, bottleneck = self.w_down.shape[1:]
        copy = BottleneckAdapter(hidden, bottleneck)
        copy.act = type(self.act)()
        with torch.no_grad():
            copy.down.weight.copy_(self.w_down[index].t())
            copy.down.bias.copy_(self.b_down[index, 0])
            copy.up.weight.copy_(self.w_up[index].t())
            copy.up.bias.copy_(self.b_up[index, 0])
        return copy.to(self.w_down.device, self.w_down.dtype)

    def select(self, indices: Sequence[int]) -> AdapterBank:
        """A bank of the adapters at ``indices`` (in that order); the others are gone, not masked.

        ``loop`` banks reuse the kept adapter modules; ``bmm`` banks copy the kept slices of the weights.
        """
        if self.impl == "loop":
            return AdapterBank([self.adapters[i] for i in indices], impl="loop")
        kept = AdapterBank([self.adapter(i) for i in indices], impl=self.impl)
        return kept.requires_grad_(self.w_down.requires_grad)

    def forward(self, hidden: torch.Tensor, shared: bool) -> torch.Tensor:
        count = self.size
        if shared:
            rows = hidden.reshape(1, -1, hidden.shape[-1])
            out_shape = (count, *hidden.shape)
        else:
            rows = hidden.reshape(count, -1, hidden.shape[-1])
            out_shape = hidden.shape
        if self.impl == "loop":
            outputs = [adapter(rows[0 if shared else i]) for i, adapter in enumerate(self.adapters)]
            return torch.stack(outputs).view(out_shape)
        down = torch.matmul(rows, self.w_down) + self.b_down
        out = torch.baddbmm(self.b_up, self.act(down), self.w_up) + rows
        return out.view(out_shape)
