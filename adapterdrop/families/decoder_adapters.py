"""The native bottleneck adapter on a decoder: one after each decoder layer's MLP, put there by a hook.

``adapter`` and ``adapterdrop:n=K`` on a causal LM: a :class:`~adapterdrop.models.adapters.BottleneckAdapter`
(``up(act(down(x)))``, width h / ``reduction``) reads the output x of layer i's feed-forward block (``mlp``)
and adds to it, ``x + f(x)``, before the layer's residual add: the Pfeiffer placement (AdapterHub's
``seq_bn``, one adapter per layer after the feed-forward block) on a pre-norm decoder. It is installed by a
forward hook on the `transformers` module of the variant's own copy of the base (no layer is copied or
re-implemented); the adapters are a ``ModuleDict`` of the variant, keyed by layer index. With
``adapterdrop:n=K`` only layers K..L-1 carry one, so nothing below layer K needs a gradient and autograd
runs no backward there: AdapterDrop's training speedup comes out of the mechanism. Only the Pfeiffer
placement and a fixed ``n`` run on decoders; robust AdapterDrop and the Houlsby placement are refused in
one line.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from adapterdrop.errors import VariantError
from adapterdrop.families import decoder
from adapterdrop.models.adapters import BottleneckAdapter, bottleneck_size
from adapterdrop.models.encoder import region
from adapterdrop.variants.spec import VariantSpec


def _adds_adapter(adapter: BottleneckAdapter):
    def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        return output + region("adapter", adapter, output)

    return hook


def attach_adapters(lm: nn.Module, layers: Iterable[int], spec: VariantSpec) -> nn.ModuleDict:
    """A bottleneck adapter after the MLP of each of ``layers`` of ``lm`` (hooks on ``lm``'s own modules;
    the caller seeds the initialisation); returns them, keyed by layer index."""
    if spec["placement"] != "pfeiffer":
        raise VariantError(f"'{spec.canonical}': decoders take the pfeiffer placement only (after the MLP)")
    hidden = lm.config.hidden_size
    adapters = nn.ModuleDict()
    blocks = decoder.layers(lm)
    for index in layers:
        adapter = BottleneckAdapter(hidden, bottleneck_size(hidden, spec["reduction"]), spec["act"])
        adapters[str(index)] = adapter
        blocks[index].mlp.register_forward_hook(_adds_adapter(adapter))
    return adapters
