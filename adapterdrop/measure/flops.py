"""FLOP counting with ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs, 2 per multiply-add; not MACs).

FlopCounterMode has no formula for the CPU flash-attention kernel that ``scaled_dot_product_attention``
dispatches to on CPU, so it would count attention as zero there. Importing this module registers the
standard sdpa formulas (query/key/value are ``(B, heads, S, D)``) for that kernel and its backward.

:func:`step_flops` counts a prepared step: the forward, and for training the backward (the optimizer's
element-wise work is not counted). A variant whose training step draws its computation at random (robust
AdapterDrop) is counted once per value it can draw, and its figures are the exact expectation: the mean
over the equally likely values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch.utils import flop_counter

if TYPE_CHECKING:
    from adapterdrop.measure.types import PreparedStep

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


def attention_kernel(operators: Iterable[str]) -> str:
    """The attention operator among ``operators`` (aten names with FLOPs), naming the SDPA backend that ran:
    e.g. ``aten._scaled_dot_product_flash_attention``; ``math`` when attention was decomposed into matmuls."""
    names = sorted(op for op in operators if "attention" in op and "backward" not in op)
    return ",".join(names) if names else "math"


def _forward_and_backward(loss_of: Callable[[], torch.Tensor]) -> tuple[dict[str, int], int]:
    """FLOPs per operator of the loss's forward, and the FLOPs of its backward."""
    loss: list[torch.Tensor] = []
    operators = flops_by_operator(lambda: loss.append(loss_of()))
    return operators, count_flops(lambda: loss[0].backward())


def step_flops(prepared: PreparedStep) -> dict[str, Any]:
    """``flops_forward``, ``flops_step`` and ``attention_kernel`` of a prepared step, untimed.

    Gradients the count leaves are cleared. For a stochastic variant ``flops_by_draw`` maps each drawn
    value to its step FLOPs, and the two totals are their mean, rounded to an integer.
    """
    if prepared.loss is None:
        operators = flops_by_operator(prepared.step)
        total = sum(operators.values())
        return {"flops_forward": total, "flops_step": total, "attention_kernel": attention_kernel(operators)}
    model, loss_of = prepared.model, prepared.loss
    draws = model.draw_values()
    counted: dict[int, tuple[int, int]] = {}
    kernels: set[str] = set()
    for value in draws or (0,):  # a deterministic variant ignores fixed_draw: counted once
        with model.fixed_draw(value):
            operators, backward = _forward_and_backward(loss_of)
        kernels.add(attention_kernel(operators))
        counted[value] = (sum(operators.values()), backward)
        model.zero_grad(set_to_none=True)
    values: dict[str, Any] = {
        "flops_forward": round(sum(f for f, _ in counted.values()) / len(counted)),
        "flops_step": round(sum(f + b for f, b in counted.values()) / len(counted)),
        "attention_kernel": ",".join(sorted(kernels)),
    }
    if draws:
        values["flops_by_draw"] = {str(value): f + b for value, (f, b) in counted.items()}
    return values
