"""Variants of this toolkit's own (the ``native`` backend): full fine-tuning, bottleneck adapters,
AdapterDrop, parallel multi-task inference and AdapterFusion, and the variant types every backend shares.

Variants are built by name through :mod:`adapterdrop.backends` (``build_variant``, ``parse_variant``,
``list_variants``), which registers every backend's variants.
"""

from __future__ import annotations

from adapterdrop.variants.base import VariantModel
from adapterdrop.variants.spec import REGISTRY, VariantInfo, VariantSpec

__all__ = ["REGISTRY", "VariantInfo", "VariantModel", "VariantSpec"]
