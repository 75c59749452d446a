"""Speedup against batch size: adapter and AdapterDrop training over full fine-tuning, adapter inference
relative to the full model. One panel per (model, sequence length), one curve per variant and series,
each point with its 95% interval."""

from __future__ import annotations

from collections.abc import Callable

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from adapterdrop.report import paper
from adapterdrop.report.figure import MARKERS_NOTE, add_caption, batch_axis, log2_batch_axis, panels
from adapterdrop.report.names import sort_key, variant_sort_key
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

#: distance between neighbouring curves along a log2 batch axis (a fraction of a doubling)
_LOG2_DODGE = 0.06
#: the same along a linear batch axis (a fraction of the smallest gap between batch sizes)
_LINEAR_DODGE = 0.04


def _optimizer_note(records: list[ReportRecord]) -> str:
    optimizers = sorted({str(r.optimizer) for r in records if r.optimizer})
    return f" Optimizer: {', '.join(optimizers)}." if optimizers else ""


def _dodged(batch: int, offset: float, log2: bool, gap: float) -> float:
    return batch * 2 ** (offset * _LOG2_DODGE) if log2 else batch + offset * _LINEAR_DODGE * gap


def _speedup_vs_batch(
    records: list[ReportRecord],
    ylabel: str,
    baseline_label: str,
    note: str,
    decorate: Callable[[Axes], None],
) -> Figure:
    by_panel = group_by(records, "model", "seq_len")
    fig, axes = panels(len(by_panel))
    variants = sorted({r.variant for r in records}, key=variant_sort_key)
    colours = {v: colour(i) for i, v in enumerate(variants)}
    styles = series_styles(records)
    for ax, ((model, seq_len), members) in zip(axes, by_panel.items(), strict=True):
        batches = sorted({r.batch_size for r in members})
        log2 = log2_batch_axis(batches)
        gap = min((b - a for a, b in zip(batches, batches[1:], strict=False)), default=1)
        curves = sorted(
            group_by(members, "variant", "series").items(),
            key=lambda item: (variant_sort_key(item[0][0]), item[0][1]),
        )
        for index, ((variant, series), curve) in enumerate(curves):
            curve = sorted(curve, key=lambda r: sort_key(r.batch_size))
            offset = dodge(index, len(curves), 1.0)
            draw_points(
                ax,
                [_dodged(r.batch_size, offset, log2, gap) for r in curve],
                [r.speedup for r in curve],
                [r.speedup_ci for r in curve],
                [is_result(r) for r in curve],
                colours[variant],
                styles[series],
            )
        ax.axhline(1.0, color="0.3", linewidth=1, linestyle="--", label=baseline_label)
        decorate(ax)
        batch_axis(ax, batches)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{model}, sequence length {seq_len} tokens")
        shown = sorted({r.variant for r in members}, key=variant_sort_key)
        legend(ax, {v: colours[v] for v in shown}, styles)
    add_caption(fig, records, f"{MARKERS_NOTE} {note}")
    return fig


def draw_training(records: list[ReportRecord]) -> Figure:
    """Training-step speedup of adapter and AdapterDrop variants over full fine-tuning, against batch size."""

    def paper_line(ax: Axes) -> None:
        ax.axhline(
            paper.ADAPTER_TRAINING_SPEEDUP,
            color=PAPER_COLOUR,
            linewidth=1,
            linestyle=":",
            label=f"paper: adapter up to {paper.ADAPTER_TRAINING_SPEEDUP:.1f}× "
            f"({paper.ADAPTER_TRAINING_SOURCE})",
        )

    note = (
        "Speedup = median training-step time of the baseline (`full`) / that of the variant, both from one "
        "run (one process, interleaved rounds); a step is forward + backward + optimizer step."
        + _optimizer_note(records)
    )
    return _speedup_vs_batch(
        records, "speedup over full fine-tuning (×)", "full fine-tuning (= 1)", note, paper_line
    )


def draw_inference(records: list[ReportRecord]) -> Figure:
    """Inference speed of the adapter model relative to the full model, against batch size."""
    low, high = paper.ADAPTER_INFERENCE_RELATIVE_SPEED

    def paper_band(ax: Axes) -> None:
        ax.axhspan(
            low,
            high,
            color=PAPER_COLOUR,
            alpha=0.2,
            zorder=0,
            label=f"paper: {low:.0%}–{high:.0%} of full speed ({paper.ADAPTER_INFERENCE_SOURCE})",
        )

    note = (
        "Relative speed = median forward time of `full` / that of `adapter`, both from one run; below 1 "
        "means the adapter model is slower."
    )
    return _speedup_vs_batch(
        records, "speed relative to the full model (×)", "full model (= 1)", note, paper_band
    )
