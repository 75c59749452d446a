"""An independent forward count: fvcore's per-module table beside ``FlopCounterMode``'s, reconciled.

fvcore (``fvcore.nn.FlopCountAnalysis``) traces the forward with ``torch.jit`` and counts **one FLOP per
multiply-add** (MACs), per module and operator; ``torch.utils.flop_counter`` counts **two** (one multiply,
one add). Both run here on ``model(input_ids)`` in eval mode without gradients. To compare them:

1. fvcore has no handle for ``aten::scaled_dot_product_attention`` or ``aten::baddbmm`` (it lists them in
   ``unsupported_ops``); :data:`EXTRA_HANDLES` adds them (MACs: the two products of attention,
   ``B·H·S·S·(D + Dv)``; the batched product of ``baddbmm``), so attention and the batched adapter banks
   are not counted as zero.
2. fvcore counts LayerNorm (5 FLOPs per element, "a rough estimate" in its source); ``FlopCounterMode``
   counts no element-wise work. The LayerNorm count is shown apart and left out of the comparison.
3. What remains is converted to FLOPs: ``2 × (fvcore − LayerNorm)``, and compared per module with
   ``FlopCounterMode``'s count of the same module (both count a module with everything called inside it).
4. A difference left over is explained where a second fvcore pass with a broadcast-aware matrix-product
   handle (:func:`broadcast_matmul_macs`) removes it: fvcore's own ``aten::matmul`` handle counts
   ``prod(A.shape) · n``, so a ``(1, R, h)`` input broadcast against ``(N, h, b)`` stacked weights (an
   adapter bank at a task fork or under fusion) counts one of its N products. Anything else is listed as
   unexplained.

Operators called outside any submodule (attention's ``scaled_dot_product_attention`` in the layer runner)
are counted by both for the model itself; :func:`compare` shows them as the row ``(model itself)``.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch
from fvcore.nn import FlopCountAnalysis, flop_count_table
from fvcore.nn.jit_handles import get_shape
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import adapterdrop.measure.flops  # noqa: F401 -- registers the CPU attention FLOP formulas
from adapterdrop.backends import backend_of

_TASK_PREFIX = re.compile(r"^tasks\.\d+\.")
MODEL_ROW = "(model itself)"
BROADCAST_WHY = (
    "fvcore's aten::matmul handle counts prod(A.shape)·n: a (1, R, h) input broadcast against (N, h, b) "
    "stacked adapter weights counts 1 of its N products (a broadcast-aware handle removes the difference)"
)


def sdpa_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """MACs of ``scaled_dot_product_attention(q, k, v, ...)``: ``q·kᵀ`` and ``p·v``."""
    query, key, value = (get_shape(v) for v in inputs[:3])
    return math.prod(query[:-1]) * key[-2] * (query[-1] + value[-1])


def baddbmm_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """MACs of ``baddbmm(bias, A (N, m, k), B (N, k, n))``: ``N·m·k·n`` (the bias add is not a MAC)."""
    left, right = get_shape(inputs[1]), get_shape(inputs[2])
    return math.prod(left) * right[-1]


def broadcast_matmul_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """MACs of ``matmul(A, B)`` with broadcast batch dimensions (``A (..., m, k)``, ``B (..., k, n)``)."""
    left, right = get_shape(inputs[0]), get_shape(inputs[1])
    if len(left) == 1 or len(right) == 1:  # vector cases: no broadcast batch to miss
        return math.prod(left) * (right[-1] if len(right) > 1 else 1)
    batch = torch.broadcast_shapes(tuple(left[:-2]), tuple(right[:-2]))
    return math.prod(batch) * left[-2] * left[-1] * right[-1]


#: handles fvcore lacks for operators the variants run
EXTRA_HANDLES: dict[str, Callable[[list[Any], list[Any]], int]] = {
    "aten::scaled_dot_product_attention": sdpa_macs,
    "aten::baddbmm": baddbmm_macs,
}


def _analysis(model: nn.Module, input_ids: torch.Tensor, broadcast_aware: bool) -> FlopCountAnalysis:
    analysis = FlopCountAnalysis(model, (input_ids,)).set_op_handle(**EXTRA_HANDLES)
    if broadcast_aware:
        analysis.set_op_handle("aten::matmul", broadcast_matmul_macs)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    analysis.total()  # runs the trace
    return analysis


def row_of(module_path: str, rows: re.Pattern[str]) -> str | None:
    """The comparison row of a module path by the backend's ``profile_rows`` pattern ``rows``
    (``base.encoder.layer.3.attention.self.query`` -> layer 3's row ``base.encoder.layer.3``); the
    ``tasks.i.`` prefix of ``separate``'s task models is left out, so a row sums over tasks (their shared
    encoder is named once, under the first task, by both counters)."""
    match = rows.match(_TASK_PREFIX.sub("", module_path))
    return match.group(1) if match else None


def per_row(values: dict[str, Counter[str]], rows: re.Pattern[str]) -> dict[str, Counter[str]]:
    """Per row (``rows``: see :func:`row_of`), the sum over its outermost module paths (both counters
    count a module inclusively)."""
    out: dict[str, Counter[str]] = {}
    for path, value in values.items():
        row = row_of(path, rows)
        if row is None:
            continue
        parts = path.split(".")
        if any(
            row_of(".".join(parts[:i]), rows) == row and ".".join(parts[:i]) in values
            for i in range(1, len(parts))
        ):
            continue  # inside an outer module of the same row: already counted there
        out.setdefault(row, Counter()).update(value)
    return out


def _torch_by_module(model: nn.Module, input_ids: torch.Tensor) -> tuple[int, dict[str, Counter[str]]]:
    """FlopCounterMode's total and its FLOPs per module path and operator (``Model.a.b`` -> ``a.b``).

    Its module tracker knows the modules that were called (the layer runner calls a layer's
    sub-modules, not the layer), each with everything called inside it."""
    with FlopCounterMode(display=False) as counter:
        model(input_ids)
    by_module = {}
    for name, operators in counter.get_flop_counts().items():
        if name != "Global" and "." in name:
            by_module[name.split(".", 1)[1]] = Counter({str(op): int(n) for op, n in operators.items()})
    return int(counter.get_total_flops()), by_module


def compare(model: nn.Module, input_ids: torch.Tensor) -> dict[str, Any]:
    """fvcore's forward table beside ``FlopCounterMode``'s, per row module (see the module docstring).

    Returns ``rows`` (module, torch FLOPs, fvcore MACs, fvcore LayerNorm FLOPs, converted FLOPs,
    difference, why), the totals, fvcore's ``unsupported_ops`` (operators it counted as zero: element-wise
    ones, which FlopCounterMode does not count either) and its ``flop_count_table`` text.
    """
    was_training = model.training
    model.eval()
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit's deprecation and tracer warnings from fvcore's trace
            torch_total, torch_modules = _torch_by_module(model, input_ids)
            shipped = _analysis(model, input_ids, broadcast_aware=False)
            aware = _analysis(model, input_ids, broadcast_aware=True)
    finally:
        model.train(was_training)
    pattern = re.compile(backend_of(model).profile_rows)
    torch_rows = per_row(torch_modules, pattern)
    fvcore_rows = per_row(
        {path: Counter(ops) for path, ops in shipped.by_module_and_operator().items()}, pattern
    )
    aware_rows = per_row({path: Counter({"all": n}) for path, n in aware.by_module().items()}, pattern)
    model_ops = Counter({op: int(n) for op, n in shipped.by_operator().items()})
    rows = [
        _row(name, torch_rows.get(name, Counter()), fvcore_rows.get(name, Counter()), aware_rows.get(name))
        for name in sorted({*torch_rows, *fvcore_rows}, key=_order)
    ]
    outside_torch = torch_total - sum(r["torch_flops"] for r in rows)
    outside_fvcore = model_ops - sum(fvcore_rows.values(), Counter())
    outside_aware = int(aware.total()) - sum(c["all"] for c in aware_rows.values())
    rows.append(
        _row(MODEL_ROW, Counter({"all": outside_torch}), outside_fvcore, Counter({"all": outside_aware}))
    )
    fvcore_total = int(shipped.total())
    layer_norm = model_ops["layer_norm"]
    return {
        "convention": "fvcore: 1 FLOP per multiply-add (MACs); FlopCounterMode: 2 (FLOPs)",
        "rows": rows,
        "torch_flops": torch_total,
        "fvcore_macs": fvcore_total,
        "fvcore_layer_norm": layer_norm,
        "fvcore_flops": 2 * (fvcore_total - layer_norm),
        "fvcore_broadcast_aware_flops": 2 * (int(aware.total()) - layer_norm),
        "unsupported_ops": {str(op): int(n) for op, n in shipped.unsupported_ops().items()},
        "extra_handles": sorted(EXTRA_HANDLES),
        "table": flop_count_table(shipped, max_depth=3),
    }


def _order(row: str) -> tuple[int, ...]:
    kinds = ("embeddings", "encoder.layer", "plugins", "head", "tasks")
    kind = next((i for i, part in enumerate(kinds) if part in row), len(kinds))
    index = re.search(r"\.(\d+)$", row)
    return (kind, int(index.group(1)) if index else -1)


def _row(
    name: str, torch_ops: Counter[str], fvcore_ops: Counter[str], aware: Counter[str] | None
) -> dict[str, Any]:
    torch_flops = int(sum(torch_ops.values()))
    macs = int(sum(fvcore_ops.values()))
    layer_norm = int(fvcore_ops["layer_norm"])
    converted = 2 * (macs - layer_norm)
    difference = torch_flops - converted
    if difference == 0:
        why = ""
    elif aware is not None and torch_flops == 2 * (int(sum(aware.values())) - layer_norm):
        why = BROADCAST_WHY
    else:
        why = "unexplained"
    return {
        "module": name,
        "torch_flops": torch_flops,
        "fvcore_macs": macs,
        "fvcore_layer_norm": layer_norm,
        "fvcore_flops": converted,
        "difference": difference,
        "why": why,
    }
