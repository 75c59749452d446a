"""One merged model per adapter: ``peft``'s ``merge_and_unload`` on a copy, W' = W + scaling * B @ A.

A batch whose rows use several adapters is split by adapter and each part runs through its own merged model,
one after another (no LoRA product at run time, but one full set of weights per adapter, and one forward per
distinct adapter in the batch).
"""

from __future__ import annotations

import copy

import torch
from peft import PeftModel
from transformers import PreTrainedModel


def merged_model(peft_model: PeftModel, name: str) -> PreTrainedModel:
    """A plain transformers model whose weights are the base's with adapter ``name`` merged in (eval mode);
    ``peft_model`` is left as it was."""
    return copy.deepcopy(peft_model).merge_and_unload(adapter_names=[name]).eval()


def split_by_adapter(adapters: list[int]) -> dict[int, torch.Tensor]:
    """The rows of each adapter that occurs in ``adapters``, as index tensors, adapters in ascending order."""
    rows: dict[int, list[int]] = {}
    for row, adapter in enumerate(adapters):
        rows.setdefault(adapter, []).append(row)
    return {adapter: torch.tensor(rows[adapter]) for adapter in sorted(rows)}
