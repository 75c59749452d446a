"""The ``decoder`` family: decoder-only causal LMs, built by `transformers` (``AutoModelForCausalLM``) from a
config with random weights and run by their own modules (no layer is re-implemented).

Presets copy the geometry of public checkpoints from their ``config.json`` (layers, hidden size,
feed-forward size, attention heads, key/value heads, head size, vocabulary, RoPE base and scaling, maximum
positions, tied embeddings, normalisation epsilon); speed does not depend on the weights, so random
weights measure the same thing. Two more are for this toolkit:

- ``llama-tiny`` (tests): 4 layers, hidden 32, 4 heads of 8 with 2 key/value heads (grouped-query
  attention, as every preset above it), vocabulary 128, 128 positions;
- ``llama-small`` (a 2-core CPU measures it in minutes): 8 layers, hidden 256, feed-forward 1024 (4x, as
  Llama-3.2-1B), 4 heads of 64 with 2 key/value heads, vocabulary 32000 (Llama-2's and Mistral-7B-v0.1's
  tokenizer), tied embeddings, 2048 positions. Hidden 256 is bert-small's width, so its CPU numbers sit
  beside the encoder's; 8 layers make ``n=4`` the upper half; the vocabulary gives the LM head the large
  share of the work it has in small real models (a forward over 128 tokens: 2.10 of 4.18 GFLOP, counted
  with ``FlopCounterMode``).

Any other geometry comes from a ``config.json`` of a causal LM (its path, or a folder holding one: only the
config is read, never weights). Workloads: ``train`` (causal-LM loss and an AdamW step), ``prefill`` (a
prompt into the KV cache) and ``decode`` (one token against a cache); see :mod:`adapterdrop.workloads`.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from transformers import AutoModelForCausalLM, PretrainedConfig, PreTrainedModel
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

from adapterdrop.families import encoder
from adapterdrop.families.base import Family, Preset

_LLAMA3_ROPE = {"rope_type": "llama3", "low_freq_factor": 1.0, "high_freq_factor": 4.0}
_LLAMA3 = {
    "vocab_size": 128256,
    "rope_theta": 500000.0,
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-5,
}
_QWEN25 = {"vocab_size": 151936, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True}


def _geometry(layers: int, hidden: int, ffn: int, heads: int, kv_heads: int, head_dim: int) -> dict:
    return {
        "num_hidden_layers": layers,
        "hidden_size": hidden,
        "intermediate_size": ffn,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
    }


def _llama3_rope(factor: float) -> dict:
    return {"rope_scaling": {**_LLAMA3_ROPE, "factor": factor, "original_max_position_embeddings": 8192}}


#: preset name -> geometry; the public ones from the named checkpoint's config.json
PRESETS: dict[str, Preset] = {
    "llama-tiny": Preset(
        "llama",
        {
            **_geometry(4, 32, 64, 4, 2, 8),
            "vocab_size": 128,
            "max_position_embeddings": 128,
            "tie_word_embeddings": False,
        },
        "4 layers, hidden 32: for tests",
    ),
    "llama-small": Preset(
        "llama",
        {
            **_geometry(8, 256, 1024, 4, 2, 64),
            "vocab_size": 32000,
            "max_position_embeddings": 2048,
            "tie_word_embeddings": True,
        },
        "8 layers, hidden 256, vocabulary 32000: a CPU-sized Llama",
    ),
    "llama-3.2-1b": Preset(
        "llama",
        {
            **_geometry(16, 2048, 8192, 32, 8, 64),
            **_LLAMA3,
            **_llama3_rope(32.0),
            "tie_word_embeddings": True,
        },
        "meta-llama/Llama-3.2-1B",
    ),
    "llama-3.2-3b": Preset(
        "llama",
        {
            **_geometry(28, 3072, 8192, 24, 8, 128),
            **_LLAMA3,
            **_llama3_rope(32.0),
            "tie_word_embeddings": True,
        },
        "meta-llama/Llama-3.2-3B",
    ),
    "llama-3.1-8b": Preset(
        "llama",
        {
            **_geometry(32, 4096, 14336, 32, 8, 128),
            **_LLAMA3,
            **_llama3_rope(8.0),
            "tie_word_embeddings": False,
        },
        "meta-llama/Llama-3.1-8B",
    ),
    "qwen2.5-0.5b": Preset(
        "qwen2",
        {**_geometry(24, 896, 4864, 14, 2, 64), **_QWEN25, "max_position_embeddings": 32768},
        "Qwen/Qwen2.5-0.5B",
    ),
    "qwen2.5-1.5b": Preset(
        "qwen2",
        {**_geometry(28, 1536, 8960, 12, 2, 128), **_QWEN25, "max_position_embeddings": 131072},
        "Qwen/Qwen2.5-1.5B",
    ),
    "mistral-7b": Preset(
        "mistral",
        {
            **_geometry(32, 4096, 14336, 32, 8, 128),
            "vocab_size": 32768,
            "rope_theta": 1000000.0,
            "max_position_embeddings": 32768,
            "sliding_window": None,
            "rms_norm_eps": 1e-5,
            "tie_word_embeddings": False,
        },
        "mistralai/Mistral-7B-v0.3",
    ),
    "gemma-2-2b": Preset(
        "gemma2",
        {
            **_geometry(26, 2304, 9216, 8, 4, 256),
            "vocab_size": 256000,
            "rope_theta": 10000.0,
            "max_position_embeddings": 8192,
            "sliding_window": 4096,
            "query_pre_attn_scalar": 256,
            "attn_logit_softcapping": 50.0,
            "final_logit_softcapping": 30.0,
            "hidden_activation": "gelu_pytorch_tanh",
            "rms_norm_eps": 1e-6,
            "tie_word_embeddings": True,
        },
        "google/gemma-2-2b",
    ),
}


def accepts(config: PretrainedConfig) -> bool:
    """Whether ``config`` is a decoder-only causal LM (a type with a causal-LM head that is neither an
    encoder the encoder family runs nor an encoder-decoder)."""
    return (
        config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        and not encoder.accepts(config)
        and not getattr(config, "is_encoder_decoder", False)
    )


def build_base(config: PretrainedConfig, seed: int = 0) -> PreTrainedModel:
    """A frozen causal LM with random weights (seeded) from ``config``, in eval mode; nothing downloaded."""
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.requires_grad_(False)
    return model.eval()


def layers(model: nn.Module) -> nn.ModuleList:
    """The decoder layers of a causal LM (also inside a ``peft`` wrapper): the first module list holding
    ``num_hidden_layers`` modules (``model.layers`` of Llama, Qwen2, Mistral, Gemma-2; ``transformer.h`` of
    GPT-2)."""
    config = model.config
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == config.num_hidden_layers:
            return module
    raise ValueError(f"no module list of {config.num_hidden_layers} layers in {type(model).__name__}")


def max_positions(config: PretrainedConfig) -> int:
    """The positions the model covers (``max_position_embeddings``): a prompt and its new tokens together."""
    return int(config.max_position_embeddings)


def head_dim(config: PretrainedConfig) -> int:
    """Size of one attention head: ``head_dim`` where the config sets it, else hidden size / heads."""
    return int(getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)


def kv_cache_bytes(config: PretrainedConfig, batch: int, tokens: int, element_bytes: int) -> int:
    """Bytes of the keys and values a `transformers` ``DynamicCache`` holds for ``batch`` sequences of
    ``tokens`` tokens: per layer 2 x batch x key/value heads x cached tokens x head size elements, where a
    sliding-window layer (``layer_types``) keeps at most ``sliding_window - 1`` tokens."""
    kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    types = getattr(config, "layer_types", None) or ["full_attention"] * config.num_hidden_layers
    window = getattr(config, "sliding_window", None)
    cached = [min(tokens, window - 1) if kind == "sliding_attention" and window else tokens for kind in types]
    return 2 * batch * kv_heads * head_dim(config) * element_bytes * sum(cached)


def miniature(config: PretrainedConfig) -> PretrainedConfig:
    """``config`` with the same layers at width 8: 2 heads of 4, 1 key/value head, at most 64 tokens."""
    small = copy.deepcopy(config)
    small.hidden_size = small.intermediate_size = 8
    small.num_attention_heads = 2
    if hasattr(small, "num_key_value_heads"):
        small.num_key_value_heads = 1
    if getattr(small, "head_dim", None) is not None:
        small.head_dim = 4
    small.vocab_size = min(small.vocab_size, 64)
    return small


FAMILY = Family(
    name="decoder",
    summary="decoder-only causal LMs run by their transformers modules (causal-LM train, prefill, decode)",
    presets=PRESETS,
    workloads=("train", "prefill", "decode"),
    accepts=accepts,
    build_base=build_base,
    layers=layers,
    layer_pattern=r"(?:^|\.)(?:layers|h|block|blocks)\.(?P<layer>\d+)(?:\.|$)",
    max_positions=max_positions,
    miniature=miniature,
)
