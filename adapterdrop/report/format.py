"""How the report writes numbers: fixed notation with enough digits that every printed ratio can be
recomputed from the numbers printed beside it.

Times, FLOPs and memory keep :data:`SIGNIFICANT` significant digits in fixed notation (``5584`` ms, never
``5.58e+03``), so a median is known to 0.05% at worst; ratios keep :data:`RATIO_DECIMALS` decimals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

SIGNIFICANT = 4
RATIO_DECIMALS = 3
MISSING = "–"


def fixed(value: float | None, significant: int = SIGNIFICANT) -> str:
    """``value`` in fixed notation with at least ``significant`` significant digits (integers keep all)."""
    if value is None:
        return MISSING
    if value == 0:
        return "0"
    decimals = max(0, significant - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def ms(seconds: float | None) -> str:
    """Seconds as milliseconds, :func:`fixed`."""
    return MISSING if seconds is None else fixed(seconds * 1e3)


def mib(size: float | None) -> str:
    """Bytes as MiB (2^20 bytes), :func:`fixed`."""
    return MISSING if size is None else fixed(size / 2**20)


def gflops(flops: float | None) -> str:
    """FLOPs (2 per multiply-add) as GFLOPs (10^9), :func:`fixed`."""
    return MISSING if not flops else fixed(flops / 1e9)


def times(value: float | None) -> str:
    """A ratio: ``1.234×``."""
    return MISSING if value is None else f"{value:.{RATIO_DECIMALS}f}×"


def interval(ci: Sequence[float] | None, schema: int) -> str:
    """A 95% interval ``[1.201, 1.270]``, or why there is none."""
    if ci:
        low, high = ci
        return f"[{low:.{RATIO_DECIMALS}f}, {high:.{RATIO_DECIMALS}f}]"
    return "(no interval: schema 1)" if schema == 1 else "(no interval)"


def percent(value: float) -> str:
    """A fraction as a whole percentage: ``0.123`` -> ``12%``."""
    return f"{value:.0%}"
