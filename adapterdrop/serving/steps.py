"""Steps for the harness: one zero-argument callable per (implementation, workload, mix, N), with the tokens
one call produces.

A :class:`ServingSet` holds, for one base model and one :class:`~adapterdrop.serving.lora.LoRASpec`, every
implementation side by side: ``base`` (the model with no adapter, the reference), ``peft`` (one PeftModel with
the N adapters, ``adapter_names`` per row), ``native`` (a copy of the base with the batched-LoRA hooks) and
``merged`` (one merged copy per adapter, built when a batch first needs it), plus ``fork`` for the paper's
parallel inference (a copy with the hooks and a fork before the first adapted layer). The copies share the
base model's weight tensors (:func:`~adapterdrop.serving.copies.sharing_copy`): one set of base weights, the N
adapters, and one copy of the LoRA-targeted weights per merged adapter.

Workloads and what one call produces (the throughput's numerator):

- ``prefill``: B prompts of P tokens, each with its drawn adapter: B * P prompt tokens.
- ``decode``: one new token for each of B rows against a cache of P tokens: B tokens.
- ``parallel``: one prompt of P tokens for N tasks (adapter i on row i, the mix plays no part), prefill:
  N * P prompt tokens. ``base`` runs the N rows with no adapter, ``native`` runs N rows through every layer,
  ``fork`` runs the layers below the first adapted one once. ``fork-bottleneck`` and ``separate-bottleneck``
  run the same with N tasks' bottleneck adapters on LoRA's layers instead of LoRA
  (:mod:`~adapterdrop.serving.bottleneck`), with and without the fork.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from adapterdrop.errors import AdapterDropError
from adapterdrop.serving.batched import BatchedLoRA
from adapterdrop.serving.bottleneck import BOTTLENECK_IMPLEMENTATIONS, BottleneckGroup, BottleneckSpec
from adapterdrop.serving.copies import sharing_copy
from adapterdrop.serving.fork import Fork
from adapterdrop.serving.lora import LoRASpec, build_peft_model, stack_lora
from adapterdrop.serving.merged import merged_model
from adapterdrop.serving.mixes import draw_adapters
from adapterdrop.serving.workloads import (
    MergedServed,
    NativeServed,
    PeftServed,
    Served,
    decode_call,
    prefill_call,
)

#: implementations of a batch of requests, each with one of N adapters (``base``: no adapter, the reference)
IMPLEMENTATIONS = ("base", "peft", "native", "merged")
#: implementations of the same prompt for N tasks
PARALLEL_IMPLEMENTATIONS = ("base", "native", "fork")
#: implementations of the same prompt for N tasks with bottleneck adapters, not LoRA (built when first asked)
PARALLEL_BOTTLENECK_IMPLEMENTATIONS = BOTTLENECK_IMPLEMENTATIONS
#: implementations that take the prompt as one row (the others take it expanded to N rows)
FORKED = ("fork", "fork-bottleneck")
WORKLOADS = ("prefill", "decode", "parallel")


@dataclass(frozen=True)
class ServingStep:
    """A step the harness can time: ``fn()`` runs one step, producing ``tokens`` tokens."""

    fn: Callable[[], torch.Tensor]
    tokens: int
    adapters: tuple[int, ...]


class ServingSet:
    """Every implementation of serving ``spec``'s N adapters on ``base`` (taken over, put in eval mode)."""

    def __init__(self, base: PreTrainedModel, spec: LoRASpec) -> None:
        self.spec = spec
        self.config = base.config
        self.base = base.eval()
        self.device = base.device
        peft_model = build_peft_model(sharing_copy(base), spec)
        self.peft_model = peft_model
        self.stacked = stack_lora(peft_model, spec.names)
        native = sharing_copy(base)
        self.native = NativeServed(native, self.config, BatchedLoRA(native, self.stacked))
        self._merged: dict[int, PreTrainedModel] = {}
        self._fork: NativeServed | None = None
        self._bottleneck: BottleneckGroup | None = None

    @property
    def fork_layer(self) -> int:
        """The first decoder layer with LoRA (0 when every layer has it)."""
        return min(self.spec.layers) if self.spec.layers is not None else 0

    @property
    def bottleneck(self) -> BottleneckGroup:
        """N tasks' bottleneck adapters (reduction 16, seeded by the spec's seed) on LoRA's layers."""
        if self._bottleneck is None:
            layers = self.spec.layers or tuple(range(self.config.num_hidden_layers))
            spec = BottleneckSpec(self.spec.num_adapters, tuple(layers), seed=self.spec.seed)
            self._bottleneck = BottleneckGroup(self.base, spec)
        return self._bottleneck

    def served(self, implementation: str, adapters: list[int]) -> Served:
        """The implementation, with the merged models ``adapters`` needs built."""
        if implementation == "base":
            return Served(self.base, self.config)
        if implementation == "peft":
            return PeftServed(self.peft_model, self.config, self.spec.names)
        if implementation == "native":
            return self.native
        if implementation == "merged":
            for adapter in set(adapters) - set(self._merged):
                self._merged[adapter] = merged_model(self.peft_model, self.spec.names[adapter])
            return MergedServed(self._merged, self.config)
        if implementation == "fork":
            if self._fork is None:
                model = sharing_copy(self.base)
                lora = BatchedLoRA(model, self.stacked)
                Fork(model, self.fork_layer, self.spec.num_adapters)
                self._fork = NativeServed(model, self.config, lora)
            return self._fork
        if implementation in PARALLEL_BOTTLENECK_IMPLEMENTATIONS:
            return self.bottleneck.served(implementation)
        raise AdapterDropError(f"unknown serving implementation {implementation!r}")


def prompts(
    batch_size: int, prompt_len: int, vocab_size: int, seed: int = 0, device: torch.device | None = None
) -> torch.Tensor:
    """Random prompt token ids (``batch_size``, ``prompt_len``), seeded (drawn on the CPU, then moved)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, (batch_size, prompt_len), generator=generator).to(device)


def serving_step(
    serving: ServingSet,
    implementation: str,
    workload: str,
    mix: str,
    batch_size: int,
    prompt_len: int,
    seed: int = 0,
) -> ServingStep:
    """The step of ``implementation`` on ``workload`` for ``batch_size`` requests whose adapters are drawn
    from ``serving.spec.num_adapters`` under ``mix`` (``parallel``: N rows, adapter i on row i, mix unused).
    Decode steps prefill their caches here, once."""
    num_adapters = serving.spec.num_adapters
    vocab = serving.config.vocab_size
    if workload == "parallel":
        parallel = PARALLEL_IMPLEMENTATIONS + PARALLEL_BOTTLENECK_IMPLEMENTATIONS
        if implementation not in parallel:
            raise AdapterDropError(f"workload 'parallel' runs {', '.join(parallel)}, not {implementation!r}")
        adapters = list(range(num_adapters))
        prompt = prompts(1, prompt_len, vocab, seed, serving.device)
        ids = prompt if implementation in FORKED else prompt.expand(num_adapters, -1)
        call = prefill_call(serving.served(implementation, adapters), ids, adapters)
        return ServingStep(call, num_adapters * prompt_len, tuple(adapters))
    if implementation not in IMPLEMENTATIONS:
        raise AdapterDropError(
            f"workload {workload!r} runs {', '.join(IMPLEMENTATIONS)}, not {implementation!r}"
        )
    adapters = draw_adapters(mix, batch_size, num_adapters, seed)
    served = serving.served(implementation, adapters)
    ids = prompts(batch_size, prompt_len, vocab, seed, serving.device)
    if workload == "prefill":
        return ServingStep(prefill_call(served, ids, adapters), batch_size * prompt_len, tuple(adapters))
    if workload == "decode":
        token = prompts(batch_size, 1, vocab, seed + 1, serving.device)
        return ServingStep(decode_call(served, ids, adapters, token), batch_size, tuple(adapters))
    raise AdapterDropError(f"unknown serving workload {workload!r}; choose from {', '.join(WORKLOADS)}")
