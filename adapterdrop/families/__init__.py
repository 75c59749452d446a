"""Model families and the one way to turn a ``--model`` value into a family and a config.

:data:`FAMILIES` lists every family, one line each; a new family is one module that defines ``FAMILY``
(a :class:`~adapterdrop.families.base.Family`) plus one line here. A ``--model`` value is a preset of one
family, a ``config.json`` path, or a folder holding one (only the config is read); a config belongs to the
first family that accepts it.
"""

from __future__ import annotations

from pathlib import Path

from transformers import PretrainedConfig, PreTrainedModel

from adapterdrop.errors import UnknownPresetError, UnsupportedModelError
from adapterdrop.families import decoder, encoder
from adapterdrop.families.base import Family, Preset
from adapterdrop.models.presets import read_config_file

#: every family, in the order a config from a file is offered to them
FAMILIES: dict[str, Family] = {family.name: family for family in (encoder.FAMILY, decoder.FAMILY)}


def all_presets() -> dict[str, tuple[Family, Preset]]:
    """Every preset name -> its family and geometry."""
    return {name: (family, preset) for family in FAMILIES.values() for name, preset in family.presets.items()}


def _config_path(model: str) -> Path:
    path = Path(model)
    if model.endswith(".json"):
        return path
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UnknownPresetError(f"model directory '{model}' holds no config.json")
        return path / "config.json"
    raise UnknownPresetError(
        f"unknown model preset '{model}'; valid: {', '.join(all_presets())}, a config.json path"
        " or a folder holding one"
    )


def family_of_config(config: PretrainedConfig) -> Family:
    """The first family that accepts ``config``; :class:`UnsupportedModelError` if none does."""
    for family in FAMILIES.values():
        if family.accepts(config):
            return family
    raise UnsupportedModelError(
        f"model type '{config.model_type}' is neither a BERT-style encoder nor a decoder-only causal LM"
    )


def resolve(model: str) -> tuple[Family, PretrainedConfig]:
    """The family and config of a ``--model`` value (a preset, a ``config.json`` or a folder holding one)."""
    preset = all_presets().get(model)
    if preset is not None:
        family, geometry = preset
        return family, geometry.config(model)
    config = read_config_file(_config_path(model))
    return family_of_config(config), config


def family_of(model: str) -> Family:
    """The family of a ``--model`` value."""
    return resolve(model)[0]


def model_config(model: str) -> PretrainedConfig:
    """The config of a ``--model`` value, of either family."""
    return resolve(model)[1]


def build_base(config: PretrainedConfig, seed: int = 0) -> PreTrainedModel:
    """The frozen base of ``config``'s family with random weights from ``seed``."""
    return family_of_config(config).build_base(config, seed)


def max_positions(model: str) -> int:
    """The longest sequence, in tokens, that ``model`` covers."""
    family, config = resolve(model)
    return family.max_positions(config)


__all__ = [
    "FAMILIES",
    "Family",
    "Preset",
    "all_presets",
    "build_base",
    "family_of",
    "family_of_config",
    "max_positions",
    "model_config",
    "resolve",
]
