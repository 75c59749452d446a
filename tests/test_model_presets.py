"""Model presets and configs: the longest sequence each model's positions cover, config folders."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from adapterdrop.errors import UnknownPresetError
from adapterdrop.models.encoder import build_base, embed
from adapterdrop.models.presets import PRESETS, max_sequence_length, model_config
from adapterdrop.plan import PresetError, check_sequences_fit


def miniature(name: str):
    """The config of ``name`` at width 8, one layer, a small vocabulary: its positions unchanged."""
    config = copy.deepcopy(model_config(name))
    config.hidden_size = config.intermediate_size = 8
    config.num_attention_heads, config.num_hidden_layers = 1, 1
    config.vocab_size = min(config.vocab_size, 64)
    if hasattr(config, "embedding_size"):
        config.embedding_size = 8
    return config


@pytest.mark.parametrize("name", [*PRESETS, "camembert"])
def test_max_sequence_length_is_what_the_embeddings_take(name, tmp_path):
    """The model's own embeddings take ``max_sequence_length`` tokens (none of them padding, the worst case
    for RoBERTa's positions) and fail on one more."""
    if name == "camembert":  # a family without a preset, through a config file
        path = tmp_path / "config.json"
        path.write_text(
            json.dumps({"model_type": "camembert", "max_position_embeddings": 514, "pad_token_id": 1})
        )
        name = str(path)
    config = miniature(name)
    base = build_base(config).eval()
    limit = max_sequence_length(config)
    token = (config.pad_token_id or 0) + 1
    with torch.no_grad():
        assert embed(base, torch.full((1, limit), token)).shape[1] == limit
        with pytest.raises((IndexError, RuntimeError)):
            embed(base, torch.full((1, limit + 1), token))


def test_max_sequence_length_of_the_paper_models():
    assert max_sequence_length(model_config("bert-base")) == 512
    assert max_sequence_length(model_config("roberta-base")) == 512
    assert max_sequence_length(model_config("tiny")) == 128


def test_check_sequences_fit_names_the_model_and_its_positions():
    check_sequences_fit("bert-base", [64, 512])
    with pytest.raises(
        PresetError, match="^sequence length 4096 does not fit bert-base: it has 512 positions$"
    ):
        check_sequences_fit("bert-base", [128, 4096])


def test_a_folder_holding_config_json_is_a_model(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "num_hidden_layers": 3}))
    assert model_config(str(tmp_path)).num_hidden_layers == 3
    (tmp_path / "config.json").unlink()
    with pytest.raises(UnknownPresetError, match="holds no config.json"):
        model_config(str(tmp_path))
