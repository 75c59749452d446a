"""MFU against batch size: the share of the device's peak FLOP/s a step achieves, per variant.

One panel per (phase, model, sequence length), one curve per variant and series. MFU = ``flops_step`` /
median step time / ``peak_flops_s`` (the record's own fields); the bar on a point spans the MFU of the
middle half of its timing rounds (``flops_step`` / each round's time / peak, 25th to 75th percentile).
Where the steps are launch-bound (a GPU idling between kernels) MFU stays flat as the batch grows.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from adapterdrop.report.figure import add_caption, batch_axis, panels
from adapterdrop.report.names import sort_key, variant_sort_key
from adapterdrop.report.plots.style import colour, draw_points, is_result, legend, series_styles
from adapterdrop.report.records import ReportRecord, group_by


def mfu_quartiles(record: ReportRecord) -> tuple[float, float] | None:
    """The 25th and 75th percentile of the MFU of the record's timing rounds (None without samples)."""
    if not record.time_samples_s or not record.flops_step or not record.peak_flops_s:
        return None
    per_round = [record.flops_step / seconds / record.peak_flops_s for seconds in record.time_samples_s]
    low, high = np.percentile(per_round, [25, 75])
    return float(low), float(high)


def draw_mfu(records: list[ReportRecord]) -> Figure:
    by_panel = group_by(records, "phase", "model", "seq_len")
    fig, axes = panels(len(by_panel))
    variants = sorted({r.variant for r in records}, key=variant_sort_key)
    colours = {v: colour(i) for i, v in enumerate(variants)}
    styles = series_styles(records)
    for ax, ((phase, model, seq_len), members) in zip(axes, by_panel.items(), strict=True):
        for (variant, series), curve in sorted(group_by(members, "variant", "series").items()):
            curve = sorted(curve, key=lambda r: sort_key(r.batch_size))
            draw_points(
                ax,
                [r.batch_size for r in curve],
                [r.mfu for r in curve],
                [mfu_quartiles(r) for r in curve],
                [is_result(r) for r in curve],
                colours[variant],
                styles[series],
            )
        batch_axis(ax, [r.batch_size for r in members])
        ax.set_ylim(bottom=0)
        ax.set_ylabel("MFU (achieved / peak FLOP/s)")
        ax.set_title(f"{phase}: {model}, sequence length {seq_len} tokens", fontsize=10)
        shown = sorted({r.variant for r in members}, key=variant_sort_key)
        legend(ax, {v: colours[v] for v in shown}, styles)
    sources = sorted({str(r.peak_flops_source).split(" (cached in")[0] for r in records})
    note = (
        "Filled markers: results; hollow: noisy or measured on a loaded machine. MFU = FLOPs per step "
        "(2 per multiply-add) / median step time / the device's peak; bars: MFU of the middle half of the "
        "timing rounds. Peaks: " + "; ".join(sources) + "."
    )
    add_caption(fig, records, note)
    return fig
