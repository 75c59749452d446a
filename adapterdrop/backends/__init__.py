"""Backends and the one public way to build a variant by name: ``NAME[:key=value,...]``.

:data:`BACKEND_MODULES` names every backend's module, one line each; importing this package imports
them and registers their variants (:data:`~adapterdrop.variants.spec.REGISTRY`) in that order, which is
the order they are listed in. A new backend is one module that defines ``BACKEND`` (a
:class:`~adapterdrop.backends.base.Backend`) plus one line in :data:`BACKEND_MODULES`.
"""

from __future__ import annotations

import copy
import importlib

from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from adapterdrop.backends.base import AdapterPattern, Backend
from adapterdrop.models.encoder import build_base
from adapterdrop.variants.base import VariantModel
from adapterdrop.variants.spec import REGISTRY, VariantInfo, VariantSpec, parse_variant, register

#: the module of every backend, one line each, in the order their variants are listed
BACKEND_MODULES = (
    "adapterdrop.backends.native",
    "adapterdrop.backends.peft",
    "adapterdrop.backends.serving",
)
#: every backend by name
BACKENDS: dict[str, Backend] = {
    backend.name: backend for backend in (importlib.import_module(m).BACKEND for m in BACKEND_MODULES)
}

_BY_VARIANT: dict[str, Backend] = {}
for _backend in BACKENDS.values():
    for _info in _backend.variants:
        register(_info)
        _BY_VARIANT[_info.name] = _backend


def list_variants() -> list[VariantInfo]:
    """Every registered variant with its options, in registration order."""
    return list(REGISTRY.values())


def backend_of(variant: str | VariantSpec | nn.Module) -> Backend:
    """The backend that builds ``variant`` (a name, a parsed spec, or a built variant with its ``spec``)."""
    if isinstance(variant, nn.Module):
        variant = variant.spec
    return _BY_VARIANT[parse_variant(variant).name]


def build_variant(
    spec: str | VariantSpec, config: PretrainedConfig, *, base: PreTrainedModel | None = None, seed: int = 0
) -> VariantModel:
    """Build variant ``spec`` on ``base`` (built from ``config`` if None).

    A backend that shares the base gets ``base`` itself (frozen; ``full`` copies it); any other gets a
    deep copy, so the shared encoder is never changed. Adapters, fusion layers and heads are initialised
    from ``seed``, so two builds with the same spec, base and seed hold the same weights.
    """
    parsed = parse_variant(spec)
    if base is None:
        base = build_base(config, seed)
    if not _BY_VARIANT[parsed.name].shares_base:
        base = copy.deepcopy(base)
    return REGISTRY[parsed.name].build(parsed, config, base, seed)


__all__ = [
    "BACKENDS",
    "REGISTRY",
    "AdapterPattern",
    "Backend",
    "VariantInfo",
    "VariantModel",
    "VariantSpec",
    "backend_of",
    "build_base",
    "build_variant",
    "list_variants",
    "parse_variant",
]
