"""The ``native`` backend: this toolkit's own bottleneck adapters (AdapterHub's ``seq_bn`` and
``double_seq_bn``), AdapterDrop, parallel multi-task inference and AdapterFusion, run by the layer runner
of :mod:`adapterdrop.models.encoder` on the group's shared frozen encoder (``full`` copies it itself).

Its variants are registered exactly as they always were (names, options, defaults and order), so every
stored record keeps its key.
"""

from __future__ import annotations

from adapterdrop.backends.base import AdapterPattern, Backend
from adapterdrop.variants import fusion, multitask, single

BACKEND = Backend(
    name="native",
    summary="this toolkit's bottleneck adapters, AdapterDrop, parallel inference and AdapterFusion",
    variants=(*single.VARIANTS, *multitask.VARIANTS, *fusion.VARIANTS),
    shares_base=True,
    adapter_modules=(
        AdapterPattern(r"(^|\.)plugins\.(?P<layer>\d+)\.fusion(\.|$)", "fusion"),
        AdapterPattern(r"(^|\.)plugins\.(?P<layer>\d+)(\.|$)"),
    ),
    adapter_parameters=(
        AdapterPattern(r"(^|\.)plugins\.(?P<layer>\d+)\.fusion\.", "fusion"),
        AdapterPattern(r"(^|\.)plugins\.(?P<layer>\d+)\."),
    ),
    profile_rows=r"^(base\.embeddings|base\.encoder\.layer\.\d+|plugins\.\d+|heads?)(\.|$)",
)
