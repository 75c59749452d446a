"""The paper's parallel inference on a decoder: one prompt for N tasks, forked at the first adapted layer.

When LoRA sits on layers K .. L-1 only (``layers_to_transform``), layers 0 .. K-1 compute the same thing for
every task: the prompt runs through them once (batch 1), a forward pre-hook on layer K expands the hidden
states to N rows (a broadcast view, no copy), and layers K .. L-1, the final norm and the LM head run on N
rows with each row's adapter applied by :class:`adapterdrop.serving.batched.BatchedLoRA`. Rotary
embeddings and the causal mask are computed once for batch 1 and broadcast over the N rows.

With a KV cache, layers below K hold one row and layers from K hold N (``transformers``' cache layers take
their batch from the first update). This fork saves work in prefill only: in decode each task feeds its own
new token, so the lower layers see N different rows and nothing is shared but the prompt's cache.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from adapterdrop.families.decoder import layers as decoder_layers


class Fork:
    """A forward pre-hook on decoder layer ``layer`` that expands a batch of one row to ``copies`` rows."""

    def __init__(self, model: nn.Module, layer: int, copies: int) -> None:
        layers = decoder_layers(model)
        if not 0 <= layer < len(layers):
            raise ValueError(f"fork layer {layer} out of range: the model has {len(layers)} decoder layers")
        self.copies = copies
        self.handle: RemovableHandle = layers[layer].register_forward_pre_hook(self._expand, with_kwargs=True)

    def _expand(
        self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if args:
            hidden = args[0]
            return (self._rows(hidden), *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": self._rows(kwargs["hidden_states"])}

    def _rows(self, hidden: torch.Tensor) -> torch.Tensor:
        if hidden.shape[0] != 1:
            raise ValueError(f"the fork expects one shared row below the fork, got {hidden.shape[0]}")
        return hidden.expand(self.copies, *hidden.shape[1:])

    def remove(self) -> None:
        """Take the hook off."""
        self.handle.remove()
