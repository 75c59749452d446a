"""``serve`` (:mod:`adapterdrop.backends.serving`) as a variant the harness measures: a :class:`ServingSet` on
the group's base and the prefill or decode step of one implementation.

The step is :func:`adapterdrop.serving.steps.serving_step`, the one the serving tool times: B requests of P
tokens whose adapters are drawn under the mix (seed 0), prompts drawn from the same seed. ``lm`` is the
base model the step reads (for the decode traffic and KV-cache figures, which count the base's weights:
the adapters' own bytes are left out).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from transformers import PretrainedConfig, PreTrainedModel

from adapterdrop.errors import VariantError
from adapterdrop.families import decoder
from adapterdrop.serving.lora import LoRASpec
from adapterdrop.serving.steps import ServingSet, serving_step
from adapterdrop.variants.base import VariantModel
from adapterdrop.variants.spec import VariantSpec

#: the modules every adapter adapts (the attention projections, as the serving papers' benchmarks)
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


class ServingVariant(VariantModel):
    """N adapters served by one implementation; inference only."""

    supports_training = False

    def __init__(self, spec: VariantSpec, serving: ServingSet) -> None:
        super().__init__(spec)
        self.serving = serving
        self.lm = serving.base
        self.drawn: tuple[int, ...] = ()

    def step(self, workload: str, batch_size: int, prompt_len: int) -> Callable[[], torch.Tensor]:
        """The step of ``workload`` (prefill, decode) for ``batch_size`` requests of ``prompt_len`` tokens."""
        try:
            made = serving_step(
                self.serving, self.spec["impl"], workload, self.spec["mix"], batch_size, prompt_len
            )
        except ValueError as exc:  # a mix that cannot draw this batch (distinct: N must equal B)
            raise VariantError(f"{self.spec.canonical}: {exc}") from None
        self.drawn = made.adapters
        return made.fn

    def forward(self, input_ids: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return self.lm(input_ids=input_ids, **kwargs).logits

    def describe(self) -> dict[str, Any]:
        spec = self.serving.spec
        return {
            "backend": "serving",
            "implementation": self.spec["impl"],
            "adapters": spec.num_adapters,
            "mix": self.spec["mix"],
            "rank": spec.rank,
            "target_modules": list(spec.target_modules),
            "adapter_layers": list(spec.layers) if spec.layers is not None else None,
            "drawn_adapters": list(self.drawn),
        }


def build_serving_variant(
    spec: VariantSpec, config: PretrainedConfig, base: PreTrainedModel, seed: int
) -> ServingVariant:
    """``serve`` on the group's frozen decoder ``base`` (the implementations share its weight tensors)."""
    layers = len(decoder.layers(base))
    if spec["n"] >= layers:
        raise VariantError(f"n={spec['n']} leaves no layer of {layers} with an adapter")
    lora = LoRASpec(
        spec["adapters"],
        rank=spec["r"],
        alpha=2 * spec["r"],
        target_modules=TARGETS,
        layers=tuple(range(spec["n"], layers)) if spec["n"] else None,
        seed=seed,
    )
    return ServingVariant(spec, ServingSet(base, lora))
