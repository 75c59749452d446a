"""FLOP counting with ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs, 2 per multiply-add; not MACs).

FlopCounterMode has no formula for the CPU flash-attention kernel that ``scaled_dot_product_attention``
dispatches to on CPU, so it would count attention as zero there. Importing this module registers the
standard sdpa formulas (query/key/value are ``(B, heads, S, D)``) for that kernel and its backward.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils import flop_counter

_aten = torch.ops.aten


@flop_counter.register_flop_formula(_aten._scaled_dot_product_flash_attention_for_cpu, get_raw=True)
def _cpu_sdpa_flops(query, key, value, *args, out_val=None, **kwargs) -> int:
    return flop_counter.sdpa_flop_count(query.shape, key.shape, value.shape)


@flop_counter.register_flop_formula(_aten._scaled_dot_product_flash_attention_for_cpu_backward, get_raw=True)
def _cpu_sdpa_backward_flops(grad_out, query, key, value, *args, out_val=None, **kwargs) -> int:
    return flop_counter.sdpa_backward_flop_count(grad_out.shape, query.shape, key.shape, value.shape)


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of the aten operations that ``fn()`` runs (its autograd backward included if it runs one)."""
    with flop_counter.FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def flops_by_operator(fn: Callable[[], object]) -> dict[str, int]:
    """FLOPs of ``fn()`` per aten operator name (e.g. ``aten.addmm``), for tests and profiling."""
    with flop_counter.FlopCounterMode(display=False) as counter:
        fn()
    return {str(op): int(count) for op, count in counter.get_flop_counts()["Global"].items()}
