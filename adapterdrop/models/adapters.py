"""Bottleneck adapters as AdapterHub's ``adapters`` library wires them into a BERT layer.

A *bottleneck* is ``f(z) = W_up · act(W_down · z + b_down) + b_up`` with ``W_down: h -> b`` and
``W_up: b -> h``, ``b = h / reduction_factor``: ``2·h·b + b + h`` parameters, nothing else (the AdapterHub
configs below add no adapter LayerNorm: ``ln_before = ln_after = False``). :class:`BottleneckAdapter` is
one ``f``; :class:`AdapterBank` is N of them side by side. Neither adds a residual: where the residuals and
the layer's LayerNorm go is the *placement*, applied by :func:`bottleneck_block`.

AdapterHub calls its adapter layer at the end of BERT's ``BertSelfOutput`` and ``BertOutput`` with the
sub-layer output ``x`` (after dense and dropout), the sub-layer input ``r`` (the residual) and the layer's
LayerNorm ``LN`` (``bottleneck_layer_forward(hidden_states, input_tensor, layer_norm)``). For one adapter it
runs ``Adapter.pre_forward``, ``Adapter.forward`` and ``Adapter.post_forward``; with the flags shared by both
configs used here (``residual_before_ln=True``, ``original_ln_after=True``, ``adapter_residual_before_ln=
False``, ``ln_before = ln_after = False``, ``scaling=1.0``, ``dropout=0.0``, no gating) that is

    z = LN(x + r) if original_ln_before else x      # pre_forward; the adapter residual is x itself
    y = LN(f(z) + x + r)                            # forward adds x, post_forward adds r and normalises

- ``pfeiffer`` = ``seq_bn`` (``SeqBnConfig``): ``original_ln_before=True``, after the feed-forward block only
  (``mh_adapter=False``, ``output_adapter=True``), ``non_linearity="relu"``:
  ``y = LN(f(LN(x + r)) + x + r)``, the layer's LayerNorm applied twice.
- ``houlsby`` = ``double_seq_bn`` (``DoubleSeqBnConfig``): ``original_ln_before=False``, after attention and
  after the feed-forward block (``mh_adapter = output_adapter = True``), ``non_linearity="swish"``:
  ``y = LN(f(x) + x + r)`` at both positions.

Differences that change no value: AdapterHub multiplies ``f``'s output by ``scaling = 1.0`` and applies a
dropout of p = 0; both are identities and are not run here. AdapterHub initialises biases to zero; here
every weight and bias is drawn from N(0, 0.02²), so no adapter is the identity by construction (tests that
compare variants would otherwise pass for the wrong reason; speed does not depend on the values).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from adapterdrop import testing_plant
from adapterdrop.models.encoder import region

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "swish": nn.SiLU,
}

#: How a bank of N adapters runs: ``bmm`` keeps stacked weights and runs one batched matrix product per
#: projection; ``loop`` keeps N adapter modules and runs them one after another.
BANK_IMPLS = ("bmm", "loop")


@dataclass(frozen=True)
class Placement:
    """Where one layer's adapters sit and how they are wired in: one AdapterHub bottleneck config."""

    name: str
    #: AdapterHub's name of the config this placement computes
    adapterhub_config: str
    #: ``mh_adapter``: an adapter after the attention block too
    attention: bool
    #: ``original_ln_before``: the adapter reads ``LN(x + r)`` instead of ``x``
    original_ln_before: bool
    #: the config's default ``non_linearity``
    activation: str


PLACEMENTS: dict[str, Placement] = {
    "pfeiffer": Placement("pfeiffer", "seq_bn", attention=False, original_ln_before=True, activation="relu"),
    "houlsby": Placement(
        "houlsby", "double_seq_bn", attention=True, original_ln_before=False, activation="swish"
    ),
}


def _init(weight: torch.Tensor, bias: torch.Tensor) -> None:
    nn.init.normal_(weight, std=0.02)
    nn.init.normal_(bias, std=0.02)


class BottleneckAdapter(nn.Module):
    """One bottleneck ``f(z) = up(act(down(z)))``: (..., h) -> (..., h), without a residual."""

    def __init__(self, hidden_size: int, bottleneck: int, activation: str = "relu") -> None:
        super().__init__()
        self.down = nn.Linear(hidden_size, bottleneck)
        self.act = ACTIVATIONS[activation]()
        self.up = nn.Linear(bottleneck, hidden_size)
        _init(self.down.weight, self.down.bias)
        _init(self.up.weight, self.up.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.up(self.act(self.down(hidden)))


def bottleneck_size(hidden_size: int, reduction_factor: int) -> int:
    """Bottleneck width b = h / reduction_factor (at least 1)."""
    width = max(1, hidden_size // reduction_factor)
    if testing_plant.PLANT is not None:  # a test-only wider adapter (ADAPTERDROP_PLANT)
        return testing_plant.PLANT.bottleneck(width)
    return width


def bottleneck_block(
    bottleneck: Callable[[torch.Tensor], torch.Tensor],
    out: torch.Tensor,
    residual: torch.Tensor,
    norm: nn.Module,
    original_ln_before: bool,
) -> torch.Tensor:
    """A sub-layer's block output with an adapter: ``LN(f(z) + x + r)``, ``z = LN(x + r)`` or ``x``.

    ``out`` is the sub-layer output x, ``residual`` its input r, ``norm`` the layer's LayerNorm; the sums
    run in AdapterHub's order, ``(f(z) + x) + r``. ``bottleneck`` may fork (return ``(T, B, S, h)`` for a
    ``(B, S, h)`` input); x and r then broadcast over the tasks.
    """
    adapter_input = norm(out + residual) if original_ln_before else out
    block = norm(region("adapter", bottleneck, adapter_input) + out + residual)
    if testing_plant.PLANT is not None:  # a test-only planted slowdown (ADAPTERDROP_PLANT)
        testing_plant.PLANT.adapter_block()
    return block


class AdapterBank(nn.Module):
    """N bottlenecks at one position (each without its residual).

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
        return torch.baddbmm(self.b_up, self.act(down), self.w_up).view(out_shape)
