"""One merged model per adapter: ``peft``'s ``merge_and_unload`` on a copy, W' = W + scaling * B @ A.

A batch whose rows use several adapters is split by adapter and each part runs through its own merged model,
one after another (no LoRA product at run time, but one copy of the targeted weights per adapter, and one
forward per distinct adapter in the batch).
"""

from __future__ import annotations

import torch
from peft import PeftModel
from peft.tuners.lora import LoraLayer
from transformers import PreTrainedModel

from adapterdrop.serving.copies import sharing_copy


def merged_model(peft_model: PeftModel, name: str) -> PreTrainedModel:
    """A plain transformers model whose weights are the base's with adapter ``name`` merged in (eval mode);
    ``peft_model`` is left as it was. Only the weights LoRA targets are copied (and merged into); every other
    weight (embeddings, norms, untargeted projections, the LM head) is ``peft_model``'s own tensor."""
    targets = [
        p for m in peft_model.modules() if isinstance(m, LoraLayer) for p in m.get_base_layer().parameters()
    ]
    return sharing_copy(peft_model, own=targets).merge_and_unload(adapter_names=[name]).eval()


def split_by_adapter(adapters: list[int]) -> dict[int, torch.Tensor]:
    """The rows of each adapter that occurs in ``adapters``, as index tensors, adapters in ascending order."""
    rows: dict[int, list[int]] = {}
    for row, adapter in enumerate(adapters):
        rows.setdefault(adapter, []).append(row)
    return {adapter: torch.tensor(rows[adapter]) for adapter in sorted(rows)}
