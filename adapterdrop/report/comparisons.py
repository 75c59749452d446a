"""The standard comparisons a report looks for, and which records each one draws on.

Each comparison selects its records by variant, baseline and phase (not by the preset's comparison name,
which users choose freely). A comparison with no records is named in the report as missing, with what it
needs; nothing is drawn for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from adapterdrop.report.records import Record, family, group_by, option


@dataclass(frozen=True)
class Comparison:
    """A standard comparison: its name, a title, the records it needs (in words) and how to select them."""

    name: str
    title: str
    needs: str
    select: Callable[[list[Record]], list[Record]]


def _measured(record: Record) -> bool:
    return record.get("status") == "ok" and record.get("time_median_s") is not None


def _training(records: list[Record]) -> list[Record]:
    return [
        r
        for r in records
        if _measured(r)
        and r.get("phase") == "train"
        and r.get("baseline") == "full"
        and family(r["variant"]) in ("adapter", "adapterdrop")
        and r.get("speedup") is not None
    ]


def _inference(records: list[Record]) -> list[Record]:
    return [
        r
        for r in records
        if _measured(r)
        and r.get("phase") == "infer"
        and r.get("baseline") == "full"
        and family(r["variant"]) == "adapter"
        and r.get("speedup") is not None
    ]


def _parallel(records: list[Record]) -> list[Record]:
    """Parallel records whose baseline is the same task count with no dropped layers (the baseline too)."""
    return [
        r
        for r in records
        if _measured(r)
        and family(r["variant"]) == family(str(r.get("baseline"))) == "parallel"
        and option(r["baseline"], "n") == 0
        and option(r["baseline"], "tasks") == option(r["variant"], "tasks")
        and r.get("speedup") is not None
    ]


def _fusion(records: list[Record]) -> list[Record]:
    """Every measured record of the groups that hold a fusion variant (the baseline included)."""
    selected = []
    for group in group_by([r for r in records if _measured(r)], "series", "group").values():
        if any(family(r["variant"]) == "fusion" for r in group):
            selected.extend(group)
    return selected


def _efficiency(records: list[Record]) -> list[Record]:
    return [
        r
        for r in records
        if _measured(r)
        and r["variant"] != r.get("baseline")
        and r.get("speedup") is not None
        and r.get("ideal_speedup") is not None
    ]


def _memory(records: list[Record]) -> list[Record]:
    return [r for r in records if _measured(r) and r.get("peak_memory_bytes") is not None]


def _devices(records: list[Record]) -> list[Record]:
    """Measured records with a throughput, when they come from more than one device or dtype."""
    measured = [r for r in records if _measured(r) and r.get("throughput_samples_s") is not None]
    kinds = {(r.get("env", {}).get("hostname"), r.get("device"), r.get("dtype")) for r in measured}
    return measured if len(kinds) > 1 else []


COMPARISONS: tuple[Comparison, ...] = (
    Comparison(
        "training",
        "Training speedup over full fine-tuning",
        "train-phase records of `adapter`, `adapterdrop:n=K` or `adapterdrop:robust` with baseline `full`",
        _training,
    ),
    Comparison(
        "inference",
        "Adapter inference speed relative to the full model",
        "infer-phase records of `adapter` with baseline `full`",
        _inference,
    ),
    Comparison(
        "parallel",
        "Parallel multi-task inference: speedup against dropped layers",
        "infer-phase records of `parallel:tasks=N,n=K` with baseline `parallel:tasks=N`",
        _parallel,
    ),
    Comparison(
        "fusion",
        "AdapterFusion inference time: full, pruned and with AdapterDrop",
        "records of `fusion:adapters=N[,keep=k][,n=K]` measured with their baseline (e.g. `full`)",
        _fusion,
    ),
    Comparison(
        "efficiency",
        "Measured against ideal (FLOPs) speedup",
        "records with both a measured `speedup` and an `ideal_speedup`",
        _efficiency,
    ),
    Comparison(
        "memory",
        "Peak memory per variant",
        "records with `peak_memory_bytes`",
        _memory,
    ),
    Comparison(
        "devices",
        "Throughput per device and dtype",
        "records from more than one device or dtype",
        _devices,
    ),
)
