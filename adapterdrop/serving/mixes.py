"""Popularity mixes: which of N adapters each of B requests uses, as the multi-LoRA serving papers draw them.

``same``: every request uses adapter 0 (one adapter in the batch). ``uniform``: each request draws an adapter
uniformly from N. ``distinct``: request i uses adapter i (needs N = B). ``zipf``: adapter k (0-based) is drawn
with probability proportional to 1 / (k + 1) ** 1.5 over the N adapters (a Zipf law truncated to N, exponent
:data:`ZIPF_EXPONENT`). Draws are seeded: the same arguments always give the same indices.
"""

from __future__ import annotations

import numpy as np

from adapterdrop.errors import AdapterDropError

#: the popularity mixes, in the order reports list them
MIXES = ("same", "uniform", "distinct", "zipf")
#: exponent of the Zipf mix (S-LoRA and Punica draw adapter popularity with a power law)
ZIPF_EXPONENT = 1.5


def draw_adapters(mix: str, batch_size: int, num_adapters: int, seed: int = 0) -> list[int]:
    """The adapter index (0 .. ``num_adapters`` - 1) of each of ``batch_size`` requests under ``mix``."""
    if mix not in MIXES:
        raise AdapterDropError(f"unknown popularity mix {mix!r}; choose from {', '.join(MIXES)}")
    if batch_size < 1 or num_adapters < 1:
        raise AdapterDropError(
            f"batch size and adapter count must be positive, got {batch_size}, {num_adapters}"
        )
    if mix == "same":
        return [0] * batch_size
    if mix == "distinct":
        if num_adapters != batch_size:
            raise AdapterDropError(
                f"mix 'distinct' needs as many adapters as requests, got N={num_adapters}, B={batch_size}"
            )
        return list(range(batch_size))
    rng = np.random.default_rng(seed)
    if mix == "uniform":
        return [int(i) for i in rng.integers(0, num_adapters, size=batch_size)]
    weights = 1.0 / np.arange(1, num_adapters + 1) ** ZIPF_EXPONENT
    return [int(i) for i in rng.choice(num_adapters, size=batch_size, p=weights / weights.sum())]
