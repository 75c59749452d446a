"""The ``encoder`` family: BERT-style bidirectional encoders (BERT, RoBERTa, XLM-RoBERTa, ELECTRA,
CamemBERT), run layer by layer by :mod:`adapterdrop.models.encoder` with the variants' plug-ins.

Its presets, config checks, base builder and position limit are those of :mod:`adapterdrop.models.presets`
and :mod:`adapterdrop.models.encoder`, unchanged; this module only names them as a
:class:`~adapterdrop.families.base.Family`. Its workloads: ``train`` (a classification training step) and
``infer`` (a classification forward).
"""

from __future__ import annotations

import copy

from torch import nn
from transformers import PretrainedConfig

from adapterdrop.errors import UnsupportedModelError
from adapterdrop.families.base import Family, Preset
from adapterdrop.models import encoder, presets


def accepts(config: PretrainedConfig) -> bool:
    """Whether the layer runner drives ``config`` (a supported BERT-style bidirectional encoder)."""
    try:
        presets.check_supported(config)
    except UnsupportedModelError:
        return False
    return True


def layers(base: nn.Module) -> nn.ModuleList:
    """The encoder's transformer layers."""
    return base.encoder.layer


def miniature(config: PretrainedConfig) -> PretrainedConfig:
    """``config`` with the same layers at width 8, one head and at most 64 tokens of vocabulary."""
    small = copy.deepcopy(config)
    small.hidden_size = small.intermediate_size = 8
    small.num_attention_heads = 1
    small.vocab_size = min(small.vocab_size, 64)
    if hasattr(small, "embedding_size"):
        small.embedding_size = 8
    return small


FAMILY = Family(
    name="encoder",
    summary="BERT-style bidirectional encoders run layer by layer with adapter plug-ins (classification)",
    presets={name: Preset(*entry) for name, entry in presets.PRESETS.items()},
    workloads=("train", "infer"),
    accepts=accepts,
    build_base=encoder.build_base,
    layers=layers,
    layer_pattern=r"(?:^|\.)encoder\.layer\.(?P<layer>\d+)(?:\.|$)",
    max_positions=presets.max_sequence_length,
    miniature=miniature,
)
