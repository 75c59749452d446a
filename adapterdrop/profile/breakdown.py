"""Breakdown tables of one profiled variant: per layer and per module, forward and backward, as data.

Inputs: the regions of a step (:class:`adapterdrop.profile.regions.Region`), the operator counts of one
step (:mod:`adapterdrop.profile.counting`: FLOPs and bytes per phase, region and operator), the time of
every range in each profiled step (:meth:`adapterdrop.profile.trace.Trace.range_times`) and the model
(its parameters). Units: FLOPs (2 per multiply-add), bytes, seconds; every time is a list with one value
per profiled step (``time_s``).

- **Per layer** (:func:`layer_rows`): ``embeddings``, ``layer.0`` .. ``layer.L-1``, ``head``, ``loss``, each
  with everything inside it, and ``other`` (what the phase ran outside them), adding up to the phase
  totals. ``copies`` is the rows a region ran on over the batch size: 1 where it runs once for all tasks,
  N where it runs once per task (``in→out`` where it forks).
- **Per module** (:func:`module_rows`): the same step by kind of work, each region counted without the
  regions inside it (``add & norm`` is the residual adds and LayerNorms that close a block, including
  the extra LayerNorm a Pfeiffer adapter's block applies; ``adapter`` and ``fusion`` the adapter banks and
  fusion layers; ``other`` the glue between regions), plus ``optimizer`` (the optimizer phase).
- **Shares** (:func:`shares`): adapters + fusion, the encoder (frozen or trained), head + loss, optimizer
  and other, as shares of the step's time (the forward, backward and optimizer ranges) and FLOPs.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from torch import nn

from adapterdrop.backends import Backend, backend_of
from adapterdrop.profile.counting import Counts
from adapterdrop.profile.regions import BACKWARD_SUFFIX, Region, encloses

#: the region names of the per-layer rows
_LAYER_ROW = re.compile(r"^(embeddings|layer\.\d+|head|loss)$")
#: kind of work per region name; a region name not here (layer.i, shared_layers, task.i) is glue: "other"
CATEGORY = {
    "embeddings": "embeddings",
    "attention": "attention",
    "ffn": "feed-forward",
    "attention_norm": "add & norm",
    "ffn_norm": "add & norm",
    "adapter": "adapter",
    "fusion": "fusion",
    "head": "head",
    "loss": "loss",
}
MODULES = ("embeddings", "attention", "feed-forward", "add & norm", "adapter", "fusion", "head", "loss")
ENCODER = ("embeddings", "attention", "feed-forward", "add & norm")
#: phases with autograd work (FLOPs, regions)
PASSES = ("forward", "backward")


def _layer_key(name: str) -> tuple[int, int]:
    order = {"embeddings": (0, 0), "head": (2, 0), "loss": (3, 0)}
    if name in order:
        return order[name]
    return (1, int(name.split(".")[1]))


class StepFigures:
    """FLOPs, bytes and per-step times of every region of one profiled variant."""

    def __init__(self, regions: dict[str, Region], counts: Counts, times: list[dict[str, float]]) -> None:
        self.regions = regions
        self.times = times
        self.flops: dict[tuple[str, str], float] = defaultdict(float)
        self.bytes: dict[tuple[str, str], float] = defaultdict(float)
        for (phase, path, _op), totals in counts.items():
            self.flops[(phase, path)] += totals.flops
            self.bytes[(phase, path)] += totals.bytes

    def inclusive_flops(self, phase: str, path: str) -> float:
        """FLOPs of ``path`` and the regions inside it in ``phase``."""
        return sum(
            v for (p, where), v in self.flops.items() if p == phase and where and encloses(path, where)
        )

    def phase_flops(self, phase: str) -> float:
        return sum(v for (p, _), v in self.flops.items() if p == phase)

    def phase_bytes(self, phase: str) -> float:
        return sum(v for (p, _), v in self.bytes.items() if p == phase)

    def self_flops(self, phase: str, path: str) -> float:
        return self.flops.get((phase, path), 0.0)

    def time(self, phase: str, path: str) -> list[float]:
        """Per profiled step: seconds of ``path`` with everything inside it, in ``phase`` (a pass)."""
        name = path if phase == "forward" else path + BACKWARD_SUFFIX
        return [step.get(name, 0.0) for step in self.times]

    def self_time(self, phase: str, path: str) -> list[float]:
        """Per step: seconds of ``path`` less the regions directly inside it."""
        children = [p for p, region in self.regions.items() if region.parent == path]
        own = self.time(phase, path)
        for child in children:
            own = [a - b for a, b in zip(own, self.time(phase, child), strict=True)]
        return own

    def phase_time(self, phase: str) -> list[float]:
        """Per step: seconds of the phase's range (``forward``, ``backward``, ``optimizer``)."""
        return [step.get(phase, 0.0) for step in self.times]


def _sum_lists(lists: Iterable[list[float]], steps: int) -> list[float]:
    total = [0.0] * steps
    for values in lists:
        total = [a + b for a, b in zip(total, values, strict=True)]
    return total


def parameter_counts(model: nn.Module) -> dict[tuple[str, str], tuple[int, int]]:
    """``(layer row, module kind)`` -> (parameters, trainable parameters); shared weights counted once.
    Adapters are found by the parameter-name patterns the variant's backend declares."""
    backend = backend_of(model)
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for name, param in model.named_parameters():
        entry = counts[_parameter_place(name, backend)]
        entry[0] += param.numel()
        entry[1] += param.numel() if param.requires_grad else 0
    return {key: (total, trainable) for key, (total, trainable) in counts.items()}


def _parameter_place(name: str, backend: Backend) -> tuple[str, str]:
    adapter = backend.adapter_place(name)
    if adapter is not None:
        layer, kind = adapter
        return (f"layer.{layer}" if layer is not None else "other"), kind
    if re.search(r"(^|\.)embeddings(_project)?\.", name):
        return "embeddings", "embeddings"
    layer = re.search(r"encoder\.layer\.(\d+)\.(.*)", name)
    if layer:
        row, rest = f"layer.{layer.group(1)}", layer.group(2)
        if "LayerNorm" in rest:
            return row, "add & norm"
        return row, "attention" if rest.startswith("attention.") else "feed-forward"
    if re.search(r"(^|\.)heads?\.", name):
        return "head", "head"
    return "other", "other"


def _row_paths(figures: StepFigures) -> dict[str, list[str]]:
    """Per-layer row name -> the region paths it sums (a row is not nested in another row's region)."""
    rows: dict[str, list[str]] = defaultdict(list)
    for path, region in figures.regions.items():
        if not _LAYER_ROW.match(region.name):
            continue
        outer = path.split("/")[:-1]
        if any(_LAYER_ROW.match(part) for part in outer):
            continue
        rows[region.name].append(path)
    return rows


def layer_rows(figures: StepFigures, model: nn.Module, batch_size: int) -> list[dict[str, Any]]:
    """The per-layer table (see the module docstring), ``other`` last; FLOPs, bytes, times per step."""
    steps = len(figures.times)
    params = parameter_counts(model)
    rows = []
    for name, paths in sorted(_row_paths(figures).items(), key=lambda item: _layer_key(item[0])):
        region = figures.regions[paths[0]]
        row: dict[str, Any] = {
            "name": name,
            "copies_in": region.rows_in / batch_size if region.rows_in else None,
            "copies_out": region.rows_out / batch_size if region.rows_out else None,
            "params": sum(v[0] for (r, _), v in params.items() if r == name),
            "trainable": sum(v[1] for (r, _), v in params.items() if r == name),
        }
        for phase in PASSES:
            row[phase] = {
                "flops": sum(figures.inclusive_flops(phase, p) for p in paths),
                "bytes": sum(
                    v
                    for (ph, where), v in figures.bytes.items()
                    if ph == phase and where and any(encloses(p, where) for p in paths)
                ),
                "time_s": _sum_lists((figures.time(phase, p) for p in paths), steps),
            }
        rows.append(row)
    other: dict[str, Any] = {"name": "other", "copies_in": None, "copies_out": None}
    other["params"] = sum(v[0] for (r, _), v in params.items() if r == "other")
    other["trainable"] = sum(v[1] for (r, _), v in params.items() if r == "other")
    for phase in PASSES:
        other[phase] = {
            "flops": figures.phase_flops(phase) - sum(r[phase]["flops"] for r in rows),
            "bytes": figures.phase_bytes(phase) - sum(r[phase]["bytes"] for r in rows),
            "time_s": [
                total - sum(r[phase]["time_s"][i] for r in rows)
                for i, total in enumerate(figures.phase_time(phase))
            ],
        }
    return [*rows, other]


def module_rows(figures: StepFigures, model: nn.Module) -> list[dict[str, Any]]:
    """The per-module table (see the module docstring): MODULES, ``optimizer``, ``other``."""
    steps = len(figures.times)
    params = parameter_counts(model)
    rows: dict[str, dict[str, Any]] = {}
    for kind in MODULES:
        paths = [p for p, region in figures.regions.items() if CATEGORY.get(region.name) == kind]
        row: dict[str, Any] = {
            "name": kind,
            "params": sum(v[0] for (_, k), v in params.items() if k == kind),
            "trainable": sum(v[1] for (_, k), v in params.items() if k == kind),
        }
        for phase in PASSES:
            row[phase] = {
                "flops": sum(figures.self_flops(phase, p) for p in paths),
                "bytes": sum(figures.bytes.get((phase, p), 0.0) for p in paths),
                "time_s": _sum_lists((figures.self_time(phase, p) for p in paths), steps),
            }
        rows[kind] = row
    other: dict[str, Any] = {"name": "other", "params": 0, "trainable": 0}
    for phase in PASSES:
        other[phase] = {
            "flops": figures.phase_flops(phase) - sum(r[phase]["flops"] for r in rows.values()),
            "bytes": figures.phase_bytes(phase) - sum(r[phase]["bytes"] for r in rows.values()),
            "time_s": [
                total - sum(r[phase]["time_s"][i] for r in rows.values())
                for i, total in enumerate(figures.phase_time(phase))
            ],
        }
    optimizer = {
        "name": "optimizer",
        "params": 0,
        "trainable": 0,
        "forward": {"flops": 0.0, "bytes": 0.0, "time_s": [0.0] * steps},
        "backward": {"flops": 0.0, "bytes": 0.0, "time_s": [0.0] * steps},
        "optimizer": {
            "flops": figures.phase_flops("optimizer"),
            "bytes": figures.phase_bytes("optimizer"),
            "time_s": figures.phase_time("optimizer"),
        },
    }
    return [*rows.values(), optimizer, other]


def _row_total(row: dict[str, Any], what: str) -> Any:
    phases = [row[p] for p in ("forward", "backward", "optimizer") if p in row]
    if what == "time_s":
        return [sum(values) for values in zip(*(p["time_s"] for p in phases), strict=True)]
    return sum(p[what] for p in phases)


def shares(modules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Shares of the step's time and FLOPs: adapters + fusion, the encoder, head + loss, optimizer, other.

    Times are per step; the step's time is the sum of its forward, backward and optimizer ranges."""
    by_name = {row["name"]: row for row in modules}
    trained = any(by_name[kind]["trainable"] for kind in ENCODER)
    groups = {
        "adapters + fusion": ("adapter", "fusion"),
        "encoder (trained)" if trained else "encoder (frozen)": ENCODER,
        "head + loss": ("head", "loss"),
        "optimizer": ("optimizer",),
        "other": ("other",),
    }
    steps = len(modules[0]["forward"]["time_s"])
    step_time = _sum_lists((_row_total(row, "time_s") for row in modules), steps)
    step_flops = sum(_row_total(row, "flops") for row in modules)
    result = []
    for label, kinds in groups.items():
        times = _sum_lists((_row_total(by_name[k], "time_s") for k in kinds), steps)
        flops = sum(_row_total(by_name[k], "flops") for k in kinds)
        result.append(
            {
                "name": label,
                "time_share": [t / s if s else 0.0 for t, s in zip(times, step_time, strict=True)],
                "flops_share": flops / step_flops if step_flops else 0.0,
                "time_s": times,
                "flops": flops,
            }
        )
    return result
