"""Parallel multi-task inference: speedup against the number of dropped layers K, one curve per task
count N, beside the two ideals and the paper's published range."""

from __future__ import annotations

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from adapterdrop.ideals import layer_count_ideal
from adapterdrop.report import paper
from adapterdrop.report.figure import MARKERS_NOTE, add_caption, panels
from adapterdrop.report.names import option
from adapterdrop.report.plots.style import (
    PAPER_COLOUR,
    colour,
    dodge,
    draw_points,
    is_result,
    legend,
    series_styles,
)
from adapterdrop.report.records import ReportRecord, group_by

#: distance between neighbouring curves along the K axis (in layers)
_DODGE = 0.1
#: half the width of the paper's range at K = 5 (in layers): wider than the dodged markers
_PAPER_HALF_WIDTH = 0.45


def tasks(record: ReportRecord) -> int:
    return option(record.variant, "tasks")


def dropped(record: ReportRecord) -> int:
    return option(record.variant, "n")


def _paper_range(ax: Axes) -> None:
    """The paper's speedups for 5 dropped layers: the 2–16 task range as a band under the markers, and
    the 8-task value as a star above them."""
    low, high = paper.PARALLEL_K5_SPEEDUP_RANGE
    k = paper.PARALLEL_DROPPED
    span = [k - _PAPER_HALF_WIDTH, k + _PAPER_HALF_WIDTH]
    ax.fill_between(span, [low] * 2, [high] * 2, color=PAPER_COLOUR, alpha=0.4, linewidth=0, zorder=0)
    for edge in (low, high):
        ax.plot(span, [edge] * 2, color="black", linewidth=1.5, zorder=4)
    ax.plot(
        [k],
        [paper.PARALLEL_K5_SPEEDUP_8_TASKS],
        marker="*",
        markersize=13,
        color="gold",
        markeredgecolor="black",
        linestyle="none",
        zorder=5,
    )


def _paper_handles() -> list[Artist]:
    low, high = paper.PARALLEL_K5_SPEEDUP_RANGE
    k = paper.PARALLEL_DROPPED
    return [
        Patch(
            facecolor=PAPER_COLOUR,
            alpha=0.4,
            label=f"paper: K={k}, 2–16 tasks, {low:.2f}–{high:.2f}× ({paper.PARALLEL_SOURCE})",
        ),
        Line2D(
            [],
            [],
            marker="*",
            markersize=11,
            color="gold",
            markeredgecolor="black",
            linestyle="none",
            label=f"paper: K={k}, 8 tasks, {paper.PARALLEL_K5_SPEEDUP_8_TASKS:.2f}× "
            f"({paper.PARALLEL_SOURCE})",
        ),
    ]


def _ideals(ax: Axes, curve: list[ReportRecord], tone: str) -> None:
    """The FLOPs ideal (dashed, the records' ``ideal_speedup``) and the layer-count ideal (dotted)."""
    ks = [dropped(r) for r in curve]
    if all(r.ideal_speedup is not None for r in curve):
        ax.plot(ks, [r.ideal_speedup for r in curve], color=tone, linestyle="--", linewidth=1.1, zorder=1)
    layers = curve[0].model_layers
    if layers is not None:
        ideal = [layer_count_ideal(tasks(curve[0]), k, layers) for k in ks]
        ax.plot(ks, ideal, color=tone, linestyle=":", linewidth=1.3, zorder=1)


def draw_parallel(records: list[ReportRecord]) -> Figure:
    """Speedup of ``parallel:tasks=N,n=K`` over ``parallel:tasks=N`` against K, one panel per (model,
    batch, sequence length). The ideals depend on the model only: drawn once per task count."""
    by_panel = group_by(records, "model", "batch_size", "seq_len")
    fig, axes = panels(len(by_panel))
    colours = {n: colour(i) for i, n in enumerate(sorted({tasks(r) for r in records}))}
    styles = series_styles(records)
    for ax, ((model, batch, seq_len), members) in zip(axes, by_panel.items(), strict=True):
        curves = list(group_by(members, tasks, "series").items())
        ideal_drawn = set()
        for index, ((count, series), curve) in enumerate(curves):
            curve = sorted(curve, key=dropped)
            offset = dodge(index, len(curves), _DODGE)
            draw_points(
                ax,
                [dropped(r) + offset for r in curve],
                [r.speedup for r in curve],
                [r.speedup_ci for r in curve],
                [is_result(r) for r in curve],
                colours[count],
                styles[series],
            )
            if count not in ideal_drawn:
                ideal_drawn.add(count)
                _ideals(ax, curve, colours[count])
        ax.axhline(1.0, color="0.3", linewidth=0.8)
        extra: list[Artist] = [
            Line2D([], [], color="0.35", linestyle="--", label="ideal from FLOPs"),
            Line2D([], [], color="0.35", linestyle=":", label="ideal from layer counts"),
        ]
        ks = sorted({dropped(r) for r in members})
        if paper.PARALLEL_DROPPED in ks:
            _paper_range(ax)
            extra = _paper_handles() + extra
        ax.set_yscale("log", base=2)  # ratios: the paper's 1.21–1.42 stays visible beside ideals of 10+
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.set_xlabel("dropped layers K (no adapters in layers 0..K−1)")
        ax.set_ylabel("speedup over no dropped layers (×, log scale)")
        ax.set_xticks(ks)
        ax.set_title(f"{model}, batch {batch}, sequence length {seq_len} tokens")
        present = sorted({tasks(r) for r in members})
        legend(ax, {f"N = {n} tasks (measured)": colours[n] for n in present}, styles, extra=extra)
    layers = sorted({(r.model, r.model_layers) for r in records}, key=str)
    unknown = [model for model, count in layers if count is None]
    note = (
        f"{MARKERS_NOTE} Speedup = median time of `parallel:tasks=N` / that of `parallel:tasks=N,n=K`, both "
        "from one run. Layer-count ideal = N·L / (K + N·(L − K)) for L layers, counting the K dropped layers "
        "as run once and the rest once per task; the FLOPs ideal is each record's `ideal_speedup`."
    )
    if unknown:
        note += f" No layer-count ideal for {', '.join(unknown)}: no record names its layer count."
    add_caption(fig, records, note)
    return fig
