"""Model variants by name: ``NAME[:key=value,...]`` -> a built :class:`VariantModel`.

Each variant module registers itself in :data:`REGISTRY`; adding a variant is one new module plus one
import here.
"""

from __future__ import annotations

import importlib

from transformers import PretrainedConfig, PreTrainedModel

from adapterdrop.models.encoder import build_base
from adapterdrop.variants.base import VariantModel
from adapterdrop.variants.spec import REGISTRY, VariantInfo, VariantSpec, parse_variant

# importing a variant module registers its variants; this order is the order they are listed in
for _module in ("single", "multitask", "fusion"):
    importlib.import_module(f"adapterdrop.variants.{_module}")


def list_variants() -> list[VariantInfo]:
    """Every registered variant with its options, in registration order."""
    return list(REGISTRY.values())


def build_variant(
    spec: str | VariantSpec, config: PretrainedConfig, *, base: PreTrainedModel | None = None, seed: int = 0
) -> VariantModel:
    """Build variant ``spec`` on ``base`` (built from ``config`` if None; shared frozen, ``full`` copies it).

    Adapters, fusion layers and heads are initialised from ``seed``, so two builds with the same spec,
    base and seed hold the same weights.
    """
    parsed = parse_variant(spec)
    if base is None:
        base = build_base(config, seed)
    return REGISTRY[parsed.name].build(parsed, config, base, seed)


__all__ = [
    "REGISTRY",
    "VariantInfo",
    "VariantModel",
    "VariantSpec",
    "build_base",
    "build_variant",
    "list_variants",
    "parse_variant",
]
