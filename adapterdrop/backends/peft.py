"""The ``peft`` backend: Hugging Face ``peft``'s methods as variants, with AdapterDrop (``n=K``) for each
method ``peft`` can place on chosen layers.

Each variant wraps its own deep copy of the group's frozen encoder (``peft`` replaces modules in place;
the shared encoder of the other variants stays untouched) with ``peft.get_peft_model`` and runs the plain
`transformers` forward of that encoder, then the classification head every variant has
(:class:`~adapterdrop.models.heads.ClassificationHead` on the first token of the input sequence; the
virtual tokens of prefix and prompt tuning are not part of it). The head is initialised first from the
seed, so a ``peft`` variant's head equals ``full``'s and ``adapter``'s.

Variants (``peft``'s defaults unless an option says otherwise; the record's ``variant_info`` holds the
whole ``peft`` config, so a record can be rebuilt):

- ``lora``, ``dora`` (``use_dora``), ``rslora`` (``use_rslora``): ``r``, ``alpha``, ``targets``, dropout 0;
  ``merged``: the adapter merged into the weights (``merge_and_unload``), an inference-only variant.
- ``ia3``: ``targets``, ``feedforward``; ``vera``: ``r``, ``targets``; ``loha``, ``lokr``: ``r``, ``alpha``,
  ``targets``.
- ``prefix`` (prefix tuning) and ``prompt`` (prompt tuning): ``tokens`` virtual tokens.

``n=K`` is AdapterDrop: the method only in layers K..L-1, through ``peft``'s ``layers_to_transform``, or
for IA3 (whose config has none) through a ``target_modules`` regular expression naming those layers.
Prefix and prompt tuning act on every layer (their virtual tokens enter at the bottom or in every
attention), so ``n`` is refused for them. ``targets`` lists module-name suffixes joined by ``+``
(``targets=query+key+value``), as ``peft``'s ``target_modules`` list matches them.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from typing import Any

import peft
import torch
from peft.tuners.tuners_utils import BaseTunerLayer
from peft.utils import constants as peft_defaults
from transformers import PretrainedConfig, PreTrainedModel

from adapterdrop import testing_plant
from adapterdrop.backends.base import AdapterPattern, Backend
from adapterdrop.errors import VariantError
from adapterdrop.models.encoder import as_region, num_layers, region
from adapterdrop.models.heads import ClassificationHead
from adapterdrop.variants.base import NUM_LABELS, VariantModel
from adapterdrop.variants.spec import Option, VariantInfo, VariantSpec

#: ``peft``'s task type for a bare encoder: the forward returns its hidden states
TASK_TYPE = "FEATURE_EXTRACTION"
#: virtual tokens of prefix and prompt tuning when not told (``peft`` has no default; its examples use 20)
VIRTUAL_TOKENS = 20

_N = Option("n", int, 0, "AdapterDrop: layers 0..n-1 carry no adapter (0..L-1)", minimum=0)
_R = Option("r", int, 8, "rank (peft's default 8)", minimum=1)
_ALPHA = Option("alpha", int, 8, "scaling numerator alpha (peft's default 8)", minimum=1)
_TARGETS = Option(
    "targets", str, None, "modules to adapt, suffixes joined by + (default: peft's for the model type)"
)
_MERGED = Option("merged", bool, False, "merge the adapter into the weights (merge_and_unload); inference")


class PeftVariant(VariantModel):
    """A ``peft`` model on its own copy of the encoder and a classification head (see the module
    docstring). ``info`` is what the record's ``variant_info`` says about it."""

    def __init__(
        self, spec: VariantSpec, model: torch.nn.Module, head: ClassificationHead, info: dict
    ) -> None:
        super().__init__(spec)
        self.peft = model
        self.head = head
        self.info = info

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.peft(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        prepended = hidden.shape[1] - input_ids.shape[1]  # prompt tuning's virtual tokens come first
        return region("head", self.head, hidden[:, prepended:])

    def merge(self) -> None:
        """Merge the adapter into the encoder's weights (``merge_and_unload``): the plain encoder remains,
        and the variant runs inference only."""
        self.peft = self.peft.merge_and_unload()
        self.supports_training = False
        self.info["merged"] = True

    def describe(self) -> dict[str, Any]:
        return dict(self.info)


def _targets(spec: VariantSpec) -> list[str] | None:
    raw = spec["targets"]
    return [part for part in raw.split("+") if part] if raw else None


def _drop(spec: VariantSpec, layers: int) -> int:
    """``n`` if it leaves at least one layer adapted, else :class:`VariantError`."""
    n = spec["n"]
    if not 0 <= n < layers:
        raise VariantError(
            f"n={n} is out of range for '{spec.name}' on a {layers}-layer model (0..{layers - 1})"
        )
    return n


#: the module path of an encoder's layers (a decoder's: :data:`DECODER_LAYERS`), as a regex
ENCODER_LAYERS = r"encoder\.layer"
DECODER_LAYERS = r"model\.layers"


def _layer_regex(suffixes: list[str], layers: range, path: str) -> str:
    """A ``target_modules`` regex (``peft`` full-matches it) for modules ending in one of ``suffixes``
    inside the layers ``layers`` under ``path``: a list's suffix match, restricted to those layers."""
    numbers = "|".join(str(i) for i in layers)
    names = "|".join(re.escape(s) for s in suffixes)
    return rf"(?:.*\.)?{path}\.(?:{numbers})\.(?:.*\.)?(?:{names})"


def _lora_family(use_dora: bool, use_rslora: bool):
    def config(spec: VariantSpec, layers: int, model_type: str, path: str = ENCODER_LAYERS) -> dict[str, Any]:
        n = _drop(spec, layers)
        return {
            "cls": peft.LoraConfig,
            "r": spec["r"],
            "lora_alpha": spec["alpha"],
            "lora_dropout": 0.0,
            "target_modules": _targets(spec),
            "use_dora": use_dora,
            "use_rslora": use_rslora,
            "layers_to_transform": list(range(n, layers)) if n else None,
        }

    return config


def _ia3(spec: VariantSpec, layers: int, model_type: str, path: str = ENCODER_LAYERS) -> dict[str, Any]:
    n = _drop(spec, layers)
    targets, feedforward = _targets(spec), spec["feedforward"]
    feedforward = [part for part in feedforward.split("+") if part] if feedforward else None
    if n:  # IA3's config has no layers_to_transform: name the layers in target_modules
        targets = targets or peft_defaults.TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING.get(model_type)
        feedforward = feedforward or peft_defaults.TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING.get(
            model_type
        )
        if not targets or feedforward is None:
            raise VariantError(
                f"peft has no default IA3 targets for {model_type}: give targets= and feedforward="
            )
        return {
            "cls": peft.IA3Config,
            "target_modules": _layer_regex(targets, range(n, layers), path),
            "feedforward_modules": _layer_regex(feedforward, range(n, layers), path),
        }
    return {"cls": peft.IA3Config, "target_modules": targets, "feedforward_modules": feedforward}


def _with_layers(cls: type, **fixed: str):
    def config(spec: VariantSpec, layers: int, model_type: str, path: str = ENCODER_LAYERS) -> dict[str, Any]:
        n = _drop(spec, layers)
        values = {"cls": cls, "target_modules": _targets(spec), **{k: spec[v] for k, v in fixed.items()}}
        values["layers_to_transform"] = list(range(n, layers)) if n else None
        return values

    return config


def _virtual(cls: type):
    def config(spec: VariantSpec, layers: int, model_type: str, path: str = ENCODER_LAYERS) -> dict[str, Any]:
        if spec["n"]:
            raise VariantError(
                f"'{spec.name}' cannot take n: its virtual tokens act on every layer "
                "(AdapterDrop works with lora, dora, rslora, ia3, vera, loha, lokr)"
            )
        return {"cls": cls, "num_virtual_tokens": spec["tokens"]}

    return config


def _peft_config(values: dict[str, Any], task_type: str = TASK_TYPE) -> peft.PeftConfig:
    cls = values.pop("cls")
    given = {k: v for k, v in values.items() if v is not None}
    return cls(task_type=task_type, **given)


def decoder_config(spec: VariantSpec, layers: int, model_type: str) -> peft.PeftConfig:
    """The ``peft`` config of a method other than the LoRA family (``ia3``, ``vera``, ``loha``, ``lokr``,
    ``prefix``, ``prompt``) on a causal LM of ``layers`` decoder layers (task ``CAUSAL_LM``; ``n`` names
    layers under :data:`DECODER_LAYERS`), for :mod:`adapterdrop.families.decoder_variants`.
    :class:`VariantError` for an ``n`` out of range or on a method that cannot take it."""
    return _peft_config(_CONFIGS[spec.name](spec, layers, model_type, DECODER_LAYERS), "CAUSAL_LM")


def _jsonable(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


def _trace_regions(model: peft.PeftModel) -> None:
    """The profiler's regions on the transformers forward: ``embeddings``, ``layer.i`` for every encoder
    layer and ``adapter`` for every leaf module of the method (a LoRA A or B, a VeRA, LoHa or LoKr factor,
    a prompt encoder), found by the backend's module patterns. A method whose weights are parameters of the
    wrapped module (IA3's scaling vectors) has no module of its own: its work counts in the layer's glue."""
    encoder = model.get_base_model()
    as_region(encoder.embeddings, "embeddings")
    for index, layer in enumerate(encoder.encoder.layer):
        as_region(layer, f"layer.{index}")
    for name, module in model.named_modules():
        direct = next(module.parameters(recurse=False), None) is not None
        if direct and any(p.compiled.search(name) for p in _ADAPTER_MODULES):
            as_region(module, "adapter")


def _builder(make_config):
    def build(spec: VariantSpec, config: PretrainedConfig, base: PreTrainedModel, seed: int) -> PeftVariant:
        """``spec`` on ``base`` (this variant's own copy; see :func:`adapterdrop.backends.build_variant`)."""
        layers = num_layers(base)
        values = make_config(spec, layers, base.config.model_type)
        torch.manual_seed(seed)
        head = ClassificationHead(base.config.hidden_size, NUM_LABELS)  # first, as every variant's head
        try:
            peft_config = _peft_config(values)
            with warnings.catch_warnings():  # peft calls a transformers API deprecated in 5.x (FutureWarning)
                warnings.simplefilter("ignore", FutureWarning)
                model = peft.get_peft_model(base, peft_config)
        except (ValueError, TypeError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise VariantError(f"peft rejects '{spec.canonical}': {first}") from None
        adapted = sorted(
            {int(m.group(1)) for name, _ in model.named_parameters() if (m := _ADAPTED.search(name))}
        )
        info = {
            "backend": "peft",
            "peft_version": peft.__version__,
            "method": str(peft_config.peft_type.value).lower(),
            "peft_config": _jsonable(
                {k: v for k, v in peft_config.to_dict().items() if k not in ("base_model_name_or_path",)}
            ),
            "adapter_layers": adapted,
            "dropped_layers": spec["n"],
            "num_virtual_tokens": getattr(peft_config, "num_virtual_tokens", None),
        }
        _trace_regions(model)
        variant = PeftVariant(spec, model, head, info)
        if testing_plant.PLANT is not None:  # a test-only planted slowdown (ADAPTERDROP_PLANT)
            testing_plant.PLANT.wrap_peft([m for m in model.modules() if isinstance(m, BaseTunerLayer)])
        if "merged" in dict(spec.values) and spec["merged"]:
            variant.merge()
        return variant

    return build


#: the modules of every method, by name (relative to the variant or to the peft model)
_ADAPTER_MODULES = (
    AdapterPattern(r"encoder\.layer\.(?P<layer>\d+)\..*\.(?:lora_|ia3_|vera_|hada_|lokr_)[^.]*(\.|$)"),
    AdapterPattern(r"(^|\.)(?:prompt_encoder|vera_[AB])(\.|$)"),
)
#: a parameter name of a layer-wise method's adapter weights: group 1 is the encoder layer
_ADAPTED = re.compile(r"encoder\.layer\.(\d+)\..*\.(?:lora_|ia3_|vera_|hada_|lokr_)")

_LORA_OPTIONS = (_N, _R, _ALPHA, _TARGETS, _MERGED)
_TOKENS = Option("tokens", int, VIRTUAL_TOKENS, "virtual tokens (num_virtual_tokens)", minimum=1)
_NO_N = Option("n", int, 0, "not available: the virtual tokens act on every layer", minimum=0)

#: the config builder of each layer-wise method that also runs on decoders
_CONFIGS = {
    "ia3": _ia3,
    "vera": _with_layers(peft.VeraConfig, r="r"),
    "loha": _with_layers(peft.LoHaConfig, r="r", alpha="alpha"),
    "lokr": _with_layers(peft.LoKrConfig, r="r", alpha="alpha"),
    "prefix": _virtual(peft.PrefixTuningConfig),
    "prompt": _virtual(peft.PromptTuningConfig),
}
#: the peft methods :func:`decoder_config` builds for decoders
DECODER_METHODS = tuple(_CONFIGS)

VARIANTS = (
    VariantInfo(
        "lora",
        "peft LoRA (low-rank update of the targets)",
        _LORA_OPTIONS,
        _builder(_lora_family(False, False)),
    ),
    VariantInfo(
        "dora",
        "peft DoRA (LoRA with a learned magnitude, use_dora)",
        _LORA_OPTIONS,
        _builder(_lora_family(True, False)),
    ),
    VariantInfo(
        "rslora",
        "peft rsLoRA (LoRA scaled by alpha/sqrt(r), use_rslora)",
        _LORA_OPTIONS,
        _builder(_lora_family(False, True)),
    ),
    VariantInfo(
        "ia3",
        "peft IA3 (learned scaling of keys, values and feed-forward inputs)",
        (
            _N,
            _TARGETS,
            Option("feedforward", str, None, "feed-forward targets joined by + (default: peft's)"),
        ),
        _builder(_CONFIGS["ia3"]),
    ),
    VariantInfo(
        "vera",
        "peft VeRA (shared frozen random projections, learned scaling vectors)",
        (_N, dataclasses.replace(_R, default=256, help="rank (peft's default 256)"), _TARGETS),
        _builder(_CONFIGS["vera"]),
    ),
    VariantInfo(
        "loha",
        "peft LoHa (low-rank Hadamard product)",
        (_N, _R, _ALPHA, _TARGETS),
        _builder(_CONFIGS["loha"]),
    ),
    VariantInfo(
        "lokr",
        "peft LoKr (low-rank Kronecker product)",
        (_N, _R, _ALPHA, _TARGETS),
        _builder(_CONFIGS["lokr"]),
    ),
    VariantInfo(
        "prefix",
        "peft prefix tuning (virtual keys and values in every layer)",
        (_NO_N, _TOKENS),
        _builder(_CONFIGS["prefix"]),
    ),
    VariantInfo(
        "prompt",
        "peft prompt tuning (virtual input tokens)",
        (_NO_N, _TOKENS),
        _builder(_CONFIGS["prompt"]),
    ),
)

BACKEND = Backend(
    name="peft",
    summary="Hugging Face peft's methods (LoRA family, IA3, VeRA, LoHa, LoKr, prefix and prompt tuning)",
    variants=VARIANTS,
    shares_base=False,
    adapter_modules=_ADAPTER_MODULES,
    adapter_parameters=(
        AdapterPattern(r"encoder\.layer\.(?P<layer>\d+)\..*\.(?:lora_|ia3_|vera_|hada_|lokr_)"),
        AdapterPattern(r"(^|\.)(?:prompt_encoder|vera_[AB])\."),
    ),
    profile_rows=r"^(peft\.(?:base_model\.model\.)?embeddings|peft\.(?:base_model\.model\.)?encoder\.layer\.\d+|head)(\.|$)",
)
