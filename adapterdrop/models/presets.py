"""Named model geometries, built as `transformers` configs with random weights (nothing is downloaded).

The large presets copy the geometry of the public checkpoints they are named after (layers, hidden size,
heads, feed-forward size, vocabulary); speed does not depend on the weights, so random weights measure the
same thing. ``tiny`` is for tests. Any other geometry comes from a ``config.json``: its path, or a folder
holding one (a Hugging Face model directory; only the config is read, never the weights).
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoConfig, PretrainedConfig

from adapterdrop.errors import UnknownPresetError, UnsupportedModelError

_BERT = {"vocab_size": 30522, "max_position_embeddings": 512, "type_vocab_size": 2}
_ROBERTA = {
    "vocab_size": 50265,
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "layer_norm_eps": 1e-5,
}


def _geometry(layers: int, hidden: int, heads: int) -> dict:
    return {
        "num_hidden_layers": layers,
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "intermediate_size": 4 * hidden,
    }


#: preset name -> (model_type, config keyword arguments, what it mirrors)
PRESETS: dict[str, tuple[str, dict, str]] = {
    "tiny": (
        "bert",
        {**_geometry(4, 32, 2), "vocab_size": 128, "max_position_embeddings": 128, "type_vocab_size": 2},
        "4 layers, hidden 32: for tests",
    ),
    "bert-small": ("bert", {**_BERT, **_geometry(12, 256, 4)}, "google/bert_uncased_L-12_H-256_A-4"),
    "bert-base": ("bert", {**_BERT, **_geometry(12, 768, 12)}, "bert-base-uncased"),
    "bert-large": ("bert", {**_BERT, **_geometry(24, 1024, 16)}, "bert-large-uncased"),
    "roberta-base": ("roberta", {**_ROBERTA, **_geometry(12, 768, 12)}, "roberta-base"),
    "roberta-large": ("roberta", {**_ROBERTA, **_geometry(24, 1024, 16)}, "roberta-large"),
    "xlm-roberta-base": (
        "xlm-roberta",
        {**_ROBERTA, "vocab_size": 250002, **_geometry(12, 768, 12)},
        "xlm-roberta-base",
    ),
    "electra-base": ("electra", {**_BERT, "embedding_size": 768, **_geometry(12, 768, 12)}, "electra-base"),
}

#: transformers model types whose layers the runner in :mod:`adapterdrop.models.encoder` understands
SUPPORTED_MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "electra", "camembert")


def check_supported(config: PretrainedConfig) -> None:
    """Raise :class:`UnsupportedModelError` unless ``config`` is a BERT-style bidirectional encoder."""
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        raise UnsupportedModelError(
            f"model type '{config.model_type}' is not supported; valid: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    if getattr(config, "is_decoder", False):
        raise UnsupportedModelError("decoder configs are not supported; use a bidirectional encoder")
    position = getattr(config, "position_embedding_type", "absolute")
    if position != "absolute":
        raise UnsupportedModelError(f"position_embedding_type '{position}' is not supported; use 'absolute'")


#: model types whose position ids start after the padding index (RoBERTa's
#: ``create_position_ids_from_input_ids``), so ``pad_token_id + 1`` positions are never used by tokens
POSITIONS_AFTER_PADDING = ("roberta", "xlm-roberta", "camembert")


def max_sequence_length(config: PretrainedConfig) -> int:
    """The longest sequence (tokens) the model's position embeddings cover: ``max_position_embeddings``,
    less ``pad_token_id + 1`` for the RoBERTa family (512 for both bert-base and roberta-base)."""
    offset = (config.pad_token_id or 0) + 1 if config.model_type in POSITIONS_AFTER_PADDING else 0
    return int(config.max_position_embeddings) - offset


def model_config(name: str) -> PretrainedConfig:
    """The config of preset ``name``, of a local ``config.json`` path, or of a folder holding a
    ``config.json`` (a Hugging Face model directory); the file must hold ``model_type``."""
    if name in PRESETS:
        model_type, kwargs, _ = PRESETS[name]
        config = AutoConfig.for_model(model_type, **kwargs)
        config.name_or_path = name
        return config
    path = Path(name)
    if name.endswith(".json"):
        return _config_from_file(path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UnknownPresetError(f"model directory '{name}' holds no config.json")
        return _config_from_file(path / "config.json")
    raise UnknownPresetError(
        f"unknown model preset '{name}'; valid: {', '.join(PRESETS)}, a config.json path"
        " or a folder holding one"
    )


def _config_from_file(path: Path) -> PretrainedConfig:
    config = read_config_file(path)
    check_supported(config)
    return config


def read_config_file(path: Path) -> PretrainedConfig:
    """The `transformers` config of a ``config.json`` (it must hold ``model_type``), of any model type;
    :class:`UnknownPresetError` or :class:`UnsupportedModelError` with one line if it cannot be read."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise UnknownPresetError(f"cannot read model config '{path}': {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise UnknownPresetError(f"model config '{path}' is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or "model_type" not in data:
        raise UnknownPresetError(f"model config '{path}' has no 'model_type'")
    model_type = data.pop("model_type")
    try:
        config = AutoConfig.for_model(model_type, **data)
    except ValueError as exc:
        raise UnsupportedModelError(f"model config '{path}': {exc}".splitlines()[0]) from None
    config.name_or_path = str(path)
    return config
