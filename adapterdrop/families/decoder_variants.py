"""Variants on a decoder (causal LM): ``full`` fine-tuning and the LoRA family through ``peft``, with
AdapterDrop (``n=K``: the adapter in layers K..L-1 only, ``peft``'s ``layers_to_transform``).

Names and options are the registered ones (:func:`adapterdrop.backends.parse_variant`: ``full``; ``lora``,
``dora``, ``rslora`` with ``n``, ``r``, ``alpha``, ``targets``, ``merged``), so a decoder record names its
variant as an encoder record does. What differs is the model they wrap: the `transformers` causal LM
itself, its forward and its loss (the shifted next-token cross entropy `transformers` computes from
``labels``), with no classification head.

- ``full``: trains a copy of the base (every weight); for prefill and decode it is the group's frozen base
  itself (nothing is copied, nothing changes it).
- ``lora`` / ``dora`` / ``rslora``: ``peft.get_peft_model`` (task ``CAUSAL_LM``, dropout 0, ``peft``'s default
  target modules for the model type unless ``targets`` names them) on the variant's own copy of the base
  (``peft`` wraps modules in place; the shared base stays untouched); ``merged``: ``merge_and_unload``,
  inference only.

- ``adapter`` / ``adapterdrop:n=K``: the native bottleneck adapter after each decoder layer's MLP (layers
  K..L-1), by forward hooks on the variant's own copy of the base (:mod:`.decoder_adapters`).
- ``ia3`` / ``vera`` / ``loha`` / ``lokr`` through ``peft`` with ``n=K``, their configs from the peft backend
  (:func:`adapterdrop.backends.peft.decoder_config`), on the variant's own copy as LoRA;
- ``serve``: N LoRA adapters served at once (:mod:`adapterdrop.serving.variant`).

Prefix and prompt tuning run the ``train`` workload on decoders; prefill and decode refuse them with one
line for now (their virtual tokens would have to live in the KV cache those steps fill).
"""

from __future__ import annotations

import copy
import re
import warnings
from typing import Any

import peft
import torch
from transformers import PretrainedConfig, PreTrainedModel

from adapterdrop.backends import parse_variant
from adapterdrop.backends import peft as peft_backend
from adapterdrop.errors import VariantError
from adapterdrop.families import decoder
from adapterdrop.families.decoder_adapters import attach_adapters
from adapterdrop.serving.variant import build_serving_variant
from adapterdrop.variants.base import VariantModel
from adapterdrop.variants.spec import VariantSpec

#: variants a decoder builds, and for the LoRA family the peft flags of each
LORA_METHODS = {"lora": {}, "dora": {"use_dora": True}, "rslora": {"use_rslora": True}}
#: peft methods with virtual tokens: they train on decoders, prefill and decode are refused
VIRTUAL_TOKENS = ("prefix", "prompt")
#: the native bottleneck adapter (decoder_adapters): every layer, or layers n..L-1
NATIVE = ("adapter", "adapterdrop")
VARIANTS = ("full", *LORA_METHODS, *peft_backend.DECODER_METHODS, *NATIVE, "serve")
#: an adapter parameter's name (LoRA, IA3, VeRA, LoHa, LoKr): group ``layer`` is the decoder layer
_ADAPTED = re.compile(decoder.FAMILY.layer_pattern + r".*\.(?:lora_|ia3_|vera_lambda|hada_|lokr_)")


class CausalLMVariant(VariantModel):
    """A causal LM as a variant: ``lm`` is the `transformers` model, or the ``peft`` model around it.

    ``forward(input_ids, **kwargs)`` returns the logits (``(B, S, V)``, or the last ``logits_to_keep``
    positions); ``kwargs`` go to the model (a cache, ``use_cache``, ``position_ids``). ``loss`` is the
    causal-LM loss of the sequence against itself shifted by one token (``labels`` of the batch unused).
    """

    def __init__(self, spec: VariantSpec, lm: torch.nn.Module, info: dict[str, Any], *, trains: bool) -> None:
        super().__init__(spec)
        self.lm = lm
        self.info = info
        self.supports_training = trains

    def forward(self, input_ids: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return self.lm(input_ids=input_ids, **kwargs).logits

    def loss(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.lm(input_ids=input_ids, labels=input_ids, use_cache=False).loss

    def describe(self) -> dict[str, Any]:
        return dict(self.info)


def _lora_config(spec: VariantSpec, layers: int) -> peft.LoraConfig:
    n = spec["n"]
    if not 0 <= n < layers:
        raise VariantError(
            f"n={n} is out of range for '{spec.name}' on a {layers}-layer model (0..{layers - 1})"
        )
    targets = [part for part in spec["targets"].split("+") if part] if spec["targets"] else None
    return peft.LoraConfig(
        task_type="CAUSAL_LM",
        r=spec["r"],
        lora_alpha=spec["alpha"],
        lora_dropout=0.0,
        target_modules=targets,
        layers_to_transform=list(range(n, layers)) if n else None,
        **LORA_METHODS[spec.name],
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, set | frozenset | list | tuple):
        items = [_jsonable(v) for v in value]
        return sorted(items) if isinstance(value, set | frozenset) else items
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


def _native_adapter(spec: VariantSpec, base: PreTrainedModel, seed: int) -> CausalLMVariant:
    layers = len(decoder.layers(base))
    if spec.name == "adapterdrop" and spec["robust"]:
        raise VariantError(f"'{spec.canonical}': robust AdapterDrop does not run on decoders yet; use n=K")
    first = spec["n"] if spec.name == "adapterdrop" else 0
    if first is None or not 0 <= first < layers:
        raise VariantError(f"'{spec.canonical}' needs 0 <= n < {layers} on this {layers}-layer decoder")
    lm = copy.deepcopy(base)  # the hooks go on the variant's own copy: the shared base stays untouched
    torch.manual_seed(seed)
    adapters = attach_adapters(lm, range(first, layers), spec)
    info = {
        "backend": "native",
        "placement": spec["placement"],
        "reduction": spec["reduction"],
        "act": spec["act"],
        "adapter_layers": list(range(first, layers)),
        "dropped_layers": first,
    }
    variant = CausalLMVariant(spec, lm, info, trains=True)
    variant.adapters = adapters
    return variant


def build_decoder_variant(
    variant: str | VariantSpec, config: PretrainedConfig, base: PreTrainedModel, seed: int, *, train: bool
) -> CausalLMVariant:
    """``variant`` on the frozen causal LM ``base`` (see the module docstring); ``train``: for a training
    step. Adapters are initialised from ``seed``. :class:`VariantError` for a variant decoders lack."""
    spec = parse_variant(variant)
    if spec.name == "serve":  # N adapters served at once (prefill, decode; inference only, as merged LoRA)
        return build_serving_variant(spec, config, base, seed)
    if spec.name in NATIVE:  # the bottleneck adapter after each layer's MLP, by hooks on a copy of the base
        return _native_adapter(spec, base, seed)
    if spec.name not in VARIANTS:
        raise VariantError(f"'{spec.name}' does not run on a decoder yet; decoders run {', '.join(VARIANTS)}")
    layers = len(decoder.layers(base))
    if spec.name == "full":
        lm = copy.deepcopy(base).requires_grad_(True) if train else base
        info = {"backend": "transformers", "trainable": "every weight" if train else "none"}
        return CausalLMVariant(spec, lm, info, trains=True)
    if spec.name in VIRTUAL_TOKENS and not train:
        raise VariantError(
            f"'{spec.canonical}' runs the train workload only on decoders: its virtual tokens would have to "
            "live in the KV cache of prefill and decode"
        )
    if spec.name in LORA_METHODS:
        lora = _lora_config(spec, layers)
    else:  # ia3, vera, loha, lokr, prefix, prompt: the peft backend's own config, for a causal LM
        lora = peft_backend.decoder_config(spec, layers, config.model_type)
    torch.manual_seed(seed)
    try:
        with warnings.catch_warnings():  # peft calls a transformers API deprecated in 5.x (FutureWarning)
            warnings.simplefilter("ignore", FutureWarning)
            model = peft.get_peft_model(copy.deepcopy(base), lora)
    except (ValueError, TypeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VariantError(f"peft rejects '{spec.canonical}' on {config.model_type}: {first}") from None
    adapted = sorted(
        {int(m["layer"]) for name, _ in model.named_parameters() if (m := _ADAPTED.search(name))}
    )
    info = {
        "backend": "peft",
        "peft_version": peft.__version__,
        "method": spec.name,
        "peft_config": _jsonable({k: v for k, v in lora.to_dict().items() if k != "base_model_name_or_path"}),
        "adapter_layers": adapted,
        "dropped_layers": spec["n"],
    }
    if dict(spec.values).get("merged"):
        info["merged"] = True
        return CausalLMVariant(spec, model.merge_and_unload(), info, trains=False)
    return CausalLMVariant(spec, model, info, trains=True)
