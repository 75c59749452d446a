"""Native batched LoRA: each row of a batch gets its own adapter in one batched product per target module.

This is the pure-PyTorch reference that the multi-LoRA serving kernels (Punica's BGMV/SGMV, S-LoRA, vLLM's
``torch_ops``) are compared against: the stacked A (N, r, in) and B (N, out, r) of a module are gathered by
each row's adapter index, and ``x @ A_row.T @ B_row.T * scaling`` is computed for all rows at once with two
``torch.bmm`` and added to the frozen base Linear's output. It runs as forward hooks on the transformers
model's own Linear modules: no layer is copied or re-implemented. The gather runs inside every forward (a
server's batch changes from step to step), so its cost is part of the step.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from adapterdrop.serving.lora import StackedLoRA


class BatchedLoRA:
    """Forward hooks adding each row's LoRA to the target modules of a plain transformers model.

    ``rows`` holds the adapter index of every row of the next forward (a LongTensor of shape (B,)); set it
    with :meth:`set_rows` before calling the model. A target module's input is (B, S, in), as in the
    decoders of the decoder family; a forward whose batch differs from ``rows`` fails.
    """

    def __init__(self, model: nn.Module, stacked: Mapping[str, StackedLoRA]) -> None:
        modules = dict(model.named_modules())
        missing = sorted(set(stacked) - set(modules))
        if missing:
            raise ValueError(f"the model has no module {missing[0]!r} (and {len(missing) - 1} more)")
        self.device = next(iter(stacked.values())).a.device if stacked else torch.device("cpu")
        self.rows = torch.zeros(1, dtype=torch.long, device=self.device)
        self.handles: list[RemovableHandle] = [
            modules[name].register_forward_hook(self._hook(lora)) for name, lora in stacked.items()
        ]

    def set_rows(self, adapters: list[int] | torch.Tensor) -> None:
        """The adapter index of each row of the next forward."""
        self.rows = torch.as_tensor(adapters, dtype=torch.long, device=self.device)

    def _hook(self, lora: StackedLoRA):
        def add_lora(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
            x = args[0]
            if x.shape[0] != self.rows.shape[0]:
                raise ValueError(f"batch of {x.shape[0]} rows, adapters set for {self.rows.shape[0]}")
            a = lora.a.index_select(0, self.rows)  # (B, r, in)
            b = lora.b.index_select(0, self.rows)  # (B, out, r)
            shrunk = torch.bmm(x.to(a.dtype), a.transpose(1, 2))  # (B, S, r)
            return output + torch.bmm(shrunk, b.transpose(1, 2)).mul_(lora.scaling).to(output.dtype)

        return add_lora

    def remove(self) -> None:
        """Take the hooks off (the model is the plain transformers model again)."""
        for handle in self.handles:
            handle.remove()
        self.handles = []
