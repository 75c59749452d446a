"""What a model family is: one kind of model, its presets, how its base is built and what it can run.

A family (``encoder``: BERT-style bidirectional encoders run layer by layer; ``decoder``: decoder-only
causal LMs run by their own `transformers` modules) declares in one :class:`Family` record:

- its presets (name -> :class:`Preset`: the config's model type and keyword arguments, and what it mirrors);
- whether a config read from a ``config.json`` belongs to it (``accepts``);
- how its frozen base is built from a config with random weights (``build_base``: nothing is downloaded);
- its layer layout (``layers``: the module list of its transformer layers, for hooks and profiles, and
  ``layer_pattern``: a regular expression over parameter and module names whose group ``layer`` is the
  index of a layer);
- its maximum positions (``max_positions``: the longest sequence, in tokens, a config covers);
- the workloads it has (``workloads``: the phases of a scenario it can run, see
  :mod:`adapterdrop.workloads`);
- a miniature of a config (``miniature``: the same layers at a tiny width, for building every variant
  before anything is measured).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel


@dataclass(frozen=True)
class Preset:
    """A named geometry: ``AutoConfig.for_model(model_type, **kwargs)``; ``mirrors`` says of what."""

    model_type: str
    kwargs: Mapping[str, Any]
    mirrors: str

    def config(self, name: str) -> PretrainedConfig:
        """The preset's config, its ``name_or_path`` set to ``name``."""
        config = AutoConfig.for_model(self.model_type, **dict(self.kwargs))
        config.name_or_path = name
        return config


@dataclass(frozen=True)
class Family:
    """One model family (see the module docstring)."""

    name: str
    summary: str
    presets: Mapping[str, Preset]
    workloads: tuple[str, ...]
    accepts: Callable[[PretrainedConfig], bool]
    build_base: Callable[[PretrainedConfig, int], PreTrainedModel]
    layers: Callable[[nn.Module], nn.ModuleList]
    layer_pattern: str
    max_positions: Callable[[PretrainedConfig], int]
    miniature: Callable[[PretrainedConfig], PretrainedConfig]
