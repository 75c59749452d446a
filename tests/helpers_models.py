"""Small builders shared by the model tests (tiny configs, fixed seeds)."""

from __future__ import annotations

import torch
from transformers import AutoConfig, PretrainedConfig

from adapterdrop.inputs import make_batch


def tiny_config(model_type: str = "bert", **overrides: object) -> PretrainedConfig:
    """A 4-layer, hidden-32 encoder config of ``model_type`` (dropout kept: tests switch to eval)."""
    kwargs = {
        "num_hidden_layers": 4,
        "hidden_size": 32,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "vocab_size": 99,
        "max_position_embeddings": 64,
    }
    kwargs.update(overrides)
    return AutoConfig.for_model(model_type, **kwargs)


def token_ids(config: PretrainedConfig, batch: int = 3, seq: int = 12, seed: int = 0) -> torch.Tensor:
    """Random token ids for ``config`` (RoBERTa-style models keep clear of the padding id)."""
    ids = make_batch(config.vocab_size, batch, seq, seed=seed).input_ids
    return ids.clamp(min=3)
