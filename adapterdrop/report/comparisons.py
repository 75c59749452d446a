"""The comparisons a report looks for: which records each draws on, and the plot that draws them.

Each comparison selects its records by variant, baseline and phase (not by the preset's comparison name,
which users choose freely). A comparison with no records is named in the report as missing, with what it
needs; nothing is drawn for it.

Adding a comparison is one new piece: a plot function ``draw(records) -> Figure`` (its own module under
``adapterdrop.report.plots``) and one :class:`Comparison` entry in :data:`COMPARISONS` saying what it
selects. The report then draws it, links it, names it as missing when the records lack it, and removes a
stale plot of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from matplotlib.figure import Figure

from adapterdrop.report import data_parallel, execution
from adapterdrop.report.names import family, option
from adapterdrop.report.plots.devices import draw_devices
from adapterdrop.report.plots.efficiency import draw_efficiency
from adapterdrop.report.plots.fusion import draw_fusion
from adapterdrop.report.plots.memory import draw_memory
from adapterdrop.report.plots.methods import draw_methods
from adapterdrop.report.plots.methods import select as select_methods
from adapterdrop.report.plots.parallel import draw_parallel
from adapterdrop.report.plots.serving import draw_serving
from adapterdrop.report.plots.serving import select as select_serving
from adapterdrop.report.plots.speedup import draw_inference, draw_training
from adapterdrop.report.plots.utilization import draw_mfu
from adapterdrop.report.records import ReportRecord, group_by

Records = list[ReportRecord]


@dataclass(frozen=True)
class Comparison:
    """A standard comparison: its name, the file stem of its plot, a title, the records it needs (in
    words), how to select them and how to draw them."""

    name: str
    stem: str
    title: str
    needs: str
    select: Callable[[Records], Records]
    draw: Callable[[Records], Figure]


def _paired(record: ReportRecord) -> bool:
    """Measured, with a speedup against the baseline of its own run."""
    return record.measured and record.speedup is not None and record.reference is not None


def _training(records: Records) -> Records:
    return [
        r
        for r in records
        if _paired(r)
        and r.phase == "train"
        and r.baseline == "full"
        and family(r.variant) in ("adapter", "adapterdrop")
    ]


def _inference(records: Records) -> Records:
    return [
        r
        for r in records
        if _paired(r) and r.phase == "infer" and r.baseline == "full" and family(r.variant) == "adapter"
    ]


def _parallel(records: Records) -> Records:
    """Parallel records whose baseline is the same task count with no dropped layers (the baseline too)."""
    return [
        r
        for r in records
        if _paired(r)
        and family(r.variant) == family(r.baseline) == "parallel"
        and option(r.baseline, "n") == 0
        and option(r.baseline, "tasks") == option(r.variant, "tasks")
    ]


def _fusion(records: Records) -> Records:
    """Every measured record of the runs that hold a fusion variant (the baseline included)."""
    selected = []
    for members in group_by([r for r in records if r.measured], "series", "run_id").values():
        if any(family(r.variant) == "fusion" for r in members):
            selected.extend(members)
    return selected


def _efficiency(records: Records) -> Records:
    return [r for r in records if _paired(r) and not r.is_baseline and r.ideal_speedup is not None]


def _memory(records: Records) -> Records:
    return [r for r in records if r.measured and r.peak_memory_bytes is not None]


def _devices(records: Records) -> Records:
    """Measured records of the cells (comparison, phase, model, batch, length, variant) more than one
    series measured, when the series differ in host, device or dtype."""
    measured = [r for r in records if r.measured and r.throughput_samples_s is not None]
    kinds = {(r.env.get("hostname"), r.device, r.dtype) for r in measured}
    if len(kinds) < 2:
        return []
    cells = group_by(measured, "comparison", "phase", "model", "batch_size", "seq_len", "variant")
    return [r for members in cells.values() if len({m.series for m in members}) > 1 for r in members]


def _utilization(records: Records) -> Records:
    """Measured records with an MFU whose variant was measured at two batch sizes or more (a curve)."""
    with_mfu = [r for r in records if r.measured and r.mfu is not None]
    curves = group_by(with_mfu, "series", "phase", "model", "seq_len", "variant")
    return [r for members in curves.values() if len({m.batch_size for m in members}) > 1 for r in members]


def _single_process(select: Callable[[Records], Records]) -> Callable[[Records], Records]:
    """``select`` over the records of single-process runs (data-parallel ones have their own comparison)."""
    return lambda records: select([r for r in records if not data_parallel.is_data_parallel(r)])


COMPARISONS: tuple[Comparison, ...] = (
    Comparison(
        "training",
        "training_speedup",
        "Training speedup over full fine-tuning",
        "train-phase records of `adapter`, `adapterdrop:n=K` or `adapterdrop:robust` with baseline `full`",
        _single_process(_training),
        draw_training,
    ),
    Comparison(
        "inference",
        "inference_relative_speed",
        "Adapter inference speed relative to the full model",
        "infer-phase records of `adapter` with baseline `full`",
        _single_process(_inference),
        draw_inference,
    ),
    Comparison(
        "parallel",
        "parallel_speedup",
        "Parallel multi-task inference: speedup against dropped layers",
        "infer-phase records of `parallel:tasks=N,n=K` with baseline `parallel:tasks=N`",
        _single_process(_parallel),
        draw_parallel,
    ),
    Comparison(
        "fusion",
        "fusion_time",
        "AdapterFusion time per step: full, pruned and with AdapterDrop",
        "records of `fusion:adapters=N[,keep=k][,n=K]` measured with their baseline (e.g. `full`)",
        _single_process(_fusion),
        draw_fusion,
    ),
    Comparison(
        "methods",
        "methods",
        "Methods side by side: speed against full, memory, trainable parameters, AdapterDrop per method",
        "runs with baseline `full` holding two methods or more (e.g. `adapter`, `lora`, `ia3`), and "
        "`METHOD:n=K` beside `METHOD` for the AdapterDrop curves",
        _single_process(select_methods),
        draw_methods,
    ),
    Comparison(
        "serving",
        "serving",
        "Many adapters at once: throughput relative to the base model against N, per implementation and mix",
        "decoder prefill or decode records of `serve:impl=I,adapters=N,mix=M` with baseline `full`",
        _single_process(select_serving),
        draw_serving,
    ),
    Comparison(
        "efficiency",
        "efficiency",
        "Efficiency: measured against ideal (FLOPs) speedup",
        "records with both a measured `speedup` and an `ideal_speedup`",
        _single_process(_efficiency),
        draw_efficiency,
    ),
    Comparison(
        "memory",
        "memory",
        "Memory per step: parameters, optimizer state, gradients, activations",
        "records with `peak_memory_bytes`",
        _single_process(_memory),
        draw_memory,
    ),
    Comparison(
        "devices",
        "throughput_per_device",
        "Throughput per device and dtype",
        "the same scenarios measured on more than one device or dtype",
        _single_process(_devices),
        draw_devices,
    ),
    Comparison(
        "utilization",
        "mfu",
        "Utilisation: MFU against batch size",
        "records with `mfu` (achieved / peak FLOP/s) of a variant measured at two batch sizes or more",
        _single_process(_utilization),
        draw_mfu,
    ),
    Comparison(
        "data-parallel",
        "data_parallel_scaling",
        "Data-parallel training: throughput, scaling efficiency and bytes all-reduced per step",
        "records of `adapterdrop ddp` (DistributedDataParallel; a `backend` in the scenario)",
        data_parallel.select,
        data_parallel.draw,
    ),
    Comparison(
        "execution",
        "execution_modes",
        "Execution modes: step time per variant eager, compiled and with CUDA graphs",
        "the same cells measured in more than one execution mode (`--exec eager --exec compile`)",
        _single_process(execution.select),
        execution.draw,
    ),
)
