"""N LoRA adapters of one shape on one ``peft`` model, and their weights stacked for batched serving.

Every adapter has the same rank, alpha, target modules and layers (``layers_to_transform``), so their A
matrices stack to (N, r, in) and their B matrices to (N, out, r) per target module. Adapters are named
``task0`` .. ``task{N-1}``; adapter i is initialised after ``torch.manual_seed(seed + i)`` with
``init_lora_weights=False`` (A and B both random, so each adapter changes the logits: with peft's default
B = 0 every adapter would equal the base model and no equivalence test could tell adapters apart).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from peft.tuners.lora import LoraLayer
from transformers import PreTrainedModel

#: the prefix peft puts before the wrapped transformers model's module names
PEFT_PREFIX = "base_model.model."


@dataclass(frozen=True)
class LoRASpec:
    """The shape shared by all N adapters."""

    num_adapters: int
    rank: int = 8
    alpha: int = 16
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    #: decoder layers that carry LoRA (``layers_to_transform``); None: every layer
    layers: tuple[int, ...] | None = None
    seed: int = 0

    def config(self) -> LoraConfig:
        """The ``peft`` config of one adapter (dropout 0: serving runs in eval mode)."""
        return LoraConfig(
            r=self.rank,
            lora_alpha=self.alpha,
            lora_dropout=0.0,
            target_modules=list(self.target_modules),
            layers_to_transform=list(self.layers) if self.layers is not None else None,
            init_lora_weights=False,
        )

    @property
    def names(self) -> list[str]:
        """The adapters' names, index i first."""
        return [f"task{i}" for i in range(self.num_adapters)]


def build_peft_model(model: PreTrainedModel, spec: LoRASpec) -> PeftModel:
    """``model`` (taken over: peft injects its layers in place) wrapped with ``spec.num_adapters`` adapters,
    in eval mode, adapter ``task0`` active."""
    names = spec.names
    torch.manual_seed(spec.seed)
    peft_model = get_peft_model(model, spec.config(), adapter_name=names[0])
    for index, name in enumerate(names[1:], start=1):
        torch.manual_seed(spec.seed + index)
        peft_model.add_adapter(name, spec.config())
    peft_model.set_adapter(names[0])
    return peft_model.eval()


@dataclass(frozen=True)
class StackedLoRA:
    """One target module's adapters: ``a`` (N, r, in), ``b`` (N, out, r) and the shared ``scaling``
    (alpha / r): adapter i adds ``scaling * x @ a[i].T @ b[i].T`` to the base Linear's output."""

    a: torch.Tensor
    b: torch.Tensor
    scaling: float


def stack_lora(peft_model: PeftModel, names: list[str]) -> dict[str, StackedLoRA]:
    """Every LoRA layer's adapters ``names`` stacked in that order, keyed by the module's name in the wrapped
    transformers model (the name a plain copy of that model has: ``model.layers.3.self_attn.q_proj``)."""
    stacked = {}
    for module_name, module in peft_model.named_modules():
        if not isinstance(module, LoraLayer):
            continue
        scalings = {module.scaling[name] for name in names}
        if len(scalings) != 1:
            raise ValueError(f"{module_name}: adapters differ in scaling {sorted(scalings)}")
        stacked[module_name.removeprefix(PEFT_PREFIX)] = StackedLoRA(
            a=torch.stack([module.lora_A[name].weight.detach() for name in names]),
            b=torch.stack([module.lora_B[name].weight.detach() for name in names]),
            scaling=scalings.pop(),
        )
    return stacked
