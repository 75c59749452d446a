"""Causal attention counted as causal: FLOP formulas for PyTorch's fused attention kernels.

``torch.utils.flop_counter`` counts a fused attention call (``scaled_dot_product_attention`` on the
flash, memory-efficient, cuDNN or CPU flash kernel) as the full ``S_q x S_k`` square of scores, also when
the call is causal (``is_causal=True``), where every query attends to itself and the keys before it only:
the kernels skip the blocks above the diagonal, and a causal-LM's useful work is about half the square.
Importing this module wraps the formula registered for each such kernel, forward and backward, so that a
causal call counts ``pairs(S_q, S_k) / (S_q x S_k)`` of it, with ``pairs`` the (query, key) pairs the
causal mask keeps, top-left aligned as PyTorch's ``is_causal`` is: query ``i`` sees keys ``0..i``. A call
that is not causal counts exactly what it counted before (the encoders' records do not change).

Decode needs no correction: one query against the ``P + 1`` cached keys is a ``1 x (P + 1)`` call that is
not causal, and the formula already counts it as that.

``adapterdrop.measure.flops`` is imported first, so the formula it registers for the CPU flash kernel is
the one wrapped here, whatever the import order elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils import flop_counter

import adapterdrop.measure.flops  # noqa: F401 -- registers the CPU kernel's formula, wrapped below

#: fused attention kernels (forward and backward) whose formula is wrapped, where this torch has them
KERNELS = (
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_flash_attention_for_cpu_backward",
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_flash_attention_backward",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_efficient_attention_backward",
    "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_cudnn_attention_backward",
)


def causal_pairs(queries: int, keys: int) -> int:
    """(query, key) pairs a top-left causal mask keeps: query ``i`` sees keys ``0..min(i, keys - 1)``."""
    if queries <= keys:
        return queries * (queries + 1) // 2
    return keys * (keys + 1) // 2 + (queries - keys) * keys


def causal_fraction(queries: int, keys: int) -> float:
    """The share of the ``queries x keys`` square that a causal call computes."""
    return causal_pairs(queries, keys) / (queries * keys)


def _argument(names: list[str], args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> Any:
    index = names.index(name)
    return args[index] if index < len(args) else kwargs.get(name)


def _causal(original: Callable[..., int], names: list[str]) -> Callable[..., int]:
    def formula(*args: Any, **kwargs: Any) -> int:
        flops = original(*args, **kwargs)
        query = _argument(names, args, kwargs, "query")
        key = _argument(names, args, kwargs, "key")
        if not _argument(names, args, kwargs, "is_causal") or query.is_nested:
            return flops
        return round(flops * causal_fraction(query.shape[-2], key.shape[-2]))

    formula.causal_of = original  # type: ignore[attr-defined]
    return formula


def install() -> list[str]:
    """Wrap the registered formula of every kernel of :data:`KERNELS` this torch has (once); the names."""
    wrapped = []
    for name in KERNELS:
        packet = getattr(torch.ops.aten, name, None)
        original = flop_counter.flop_registry.get(packet) if packet is not None else None
        if original is None:
            continue
        if not hasattr(original, "causal_of"):
            names = [argument.name for argument in packet.default._schema.arguments]
            flop_counter.flop_registry[packet] = _causal(original, names)
        wrapped.append(name)
    return wrapped


INSTALLED = install()
