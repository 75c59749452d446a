"""How each serving implementation runs a batch, and the prefill and decode calls built on it.

*Prefill*: a forward over a P-token prompt per row that fills a fresh ``DynamicCache`` (what ``generate`` does
first). *Decode*: one new token per row against a ``StaticCache`` already holding the P prompt tokens; after
every step the cache is cropped back to P (``StaticCache.crop(-1)`` only moves its length counter), so every
call is the same step at cache length P. Logits are kept for the last ``logits_to_keep`` positions (0: all).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from peft import PeftModel
from torch import nn
from transformers import DynamicCache, PretrainedConfig, StaticCache
from transformers.cache_utils import Cache

from adapterdrop.serving.batched import BatchedLoRA
from adapterdrop.serving.merged import split_by_adapter

#: caches of one batch: one cache per model that runs part of the batch (key None: one model runs it all)
Caches = dict[int | None, Cache]


def _logits(
    model: nn.Module, ids: torch.Tensor, cache: Cache, position: int | None, keep: int, **extra
) -> torch.Tensor:
    position_ids = (
        None
        if position is None
        else torch.full((1, ids.shape[1]), position, dtype=torch.long, device=ids.device)
    )
    out = model(
        input_ids=ids, cache=cache, use_cache=True, position_ids=position_ids, logits_to_keep=keep, **extra
    )
    return out.logits


class Served:
    """One model runs the whole batch; ``adapters`` (one index per row) is ignored: the base model."""

    def __init__(self, model: nn.Module, config: PretrainedConfig) -> None:
        self.model = model
        self.config = config

    def caches(self, adapters: list[int], max_len: int | None) -> Caches:
        """Empty caches for a batch: dynamic, or static of ``max_len`` positions."""
        if max_len is None:
            return {None: DynamicCache(config=self.config)}
        return {None: StaticCache(config=self.config, max_cache_len=max_len)}

    def run(
        self,
        ids: torch.Tensor,
        adapters: list[int],
        caches: Caches,
        position: int | None = None,
        keep: int = 1,
    ) -> torch.Tensor:
        """Logits (B, keep or T, vocab) of ``ids`` (B, T), row i with adapter ``adapters[i]``."""
        return _logits(self.model, ids, caches[None], position, keep)


class PeftServed(Served):
    """``peft``'s mixed-adapter batch: one PeftModel, ``adapter_names`` per row (eval mode only)."""

    def __init__(self, model: PeftModel, config: PretrainedConfig, names: list[str]) -> None:
        super().__init__(model, config)
        self.names = names

    def run(self, ids, adapters, caches, position=None, keep=1):
        names = [self.names[i] for i in adapters]
        return _logits(self.model, ids, caches[None], position, keep, adapter_names=names)


class NativeServed(Served):
    """The native batched LoRA: a plain model with :class:`BatchedLoRA` hooks, rows set before the forward."""

    def __init__(self, model: nn.Module, config: PretrainedConfig, lora: BatchedLoRA) -> None:
        super().__init__(model, config)
        self.lora = lora

    def run(self, ids, adapters, caches, position=None, keep=1):
        self.lora.set_rows(adapters)
        return _logits(self.model, ids, caches[None], position, keep)


class MergedServed(Served):
    """One merged model per adapter; the batch split by adapter, the parts run one after another and their
    logits put back in row order. ``models`` maps an adapter index to its merged model."""

    def __init__(self, models: dict[int, nn.Module], config: PretrainedConfig) -> None:
        super().__init__(None, config)
        self.models = models

    def caches(self, adapters, max_len):
        make = (
            (lambda: DynamicCache(config=self.config))
            if max_len is None
            else (lambda: StaticCache(config=self.config, max_cache_len=max_len))
        )
        return {adapter: make() for adapter in split_by_adapter(adapters)}

    def run(self, ids, adapters, caches, position=None, keep=1):
        parts = split_by_adapter(adapters)
        outputs = [_logits(self.models[a], ids[rows], caches[a], position, keep) for a, rows in parts.items()]
        if len(parts) == 1:
            return outputs[0]
        logits = outputs[0].new_empty((ids.shape[0], *outputs[0].shape[1:]))
        for rows, out in zip(parts.values(), outputs, strict=True):
            logits[rows] = out
        return logits


def prefill_call(
    served: Served, ids: torch.Tensor, adapters: list[int], keep: int = 1
) -> Callable[[], torch.Tensor]:
    """A call running the prefill of prompts ``ids`` (B, P) into fresh caches; returns the logits."""

    def prefill() -> torch.Tensor:
        with torch.inference_mode():
            return served.run(ids, adapters, served.caches(adapters, None), keep=keep)

    return prefill


def decode_call(
    served: Served, ids: torch.Tensor, adapters: list[int], token: torch.Tensor
) -> Callable[[], torch.Tensor]:
    """A call running one decode step of ``token`` (B, 1) against caches prefilled (once, here) with the
    prompts ``ids`` (B, P); every call sees a cache of P tokens. Returns the logits (B, 1, vocab)."""
    prompt_len = ids.shape[1]
    with torch.inference_mode():
        caches = served.caches(adapters, prompt_len + 1)
        served.run(ids, adapters, caches)

    def decode() -> torch.Tensor:
        with torch.inference_mode():
            logits = served.run(token, adapters, caches, position=prompt_len)
            for cache in caches.values():
                cache.crop(-1)
        return logits

    return decode
