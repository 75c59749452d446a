"""Efficiency: measured speedup / ideal (FLOPs) speedup per variant, one point per batch size.

One panel per (comparison, phase, model, sequence length). Variants along x (named on the axis), a point
per batch size beside each other (the colour says which batch), the 95% interval of the speedup scaled by
the same ideal as an error bar. 1 means the step time fell exactly as much as its FLOPs did.
"""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from adapterdrop.report.figure import MARKERS_NOTE, PANEL_WIDTH_IN, add_caption, panels
from adapterdrop.report.names import sort_key, variant_sort_key
from adapterdrop.report.plots.style import colour, dodge, draw_points, is_result, legend, series_styles
from adapterdrop.report.records import ReportRecord, group_by

#: width a variant takes along x, in inches, so that many variants (parallel: 11 per task count) stay legible
_INCHES_PER_VARIANT = 0.15
#: the points of one variant spread over this fraction of its slot
_SPREAD = 0.6


def efficiency_interval(record: ReportRecord) -> tuple[float, float] | None:
    """The speedup's 95% interval divided by the ideal speedup (the ideal is exact: counted FLOPs)."""
    if not record.speedup_ci:
        return None
    low, high = record.speedup_ci
    return low / record.ideal_speedup, high / record.ideal_speedup


def draw_efficiency(records: list[ReportRecord]) -> Figure:
    by_panel = group_by(records, "comparison", "phase", "model", "seq_len")
    widest = max(len({r.variant for r in members}) for members in by_panel.values())
    width = max(PANEL_WIDTH_IN, _INCHES_PER_VARIANT * widest)
    fig, axes = panels(len(by_panel), max_cols=2 if width <= 1.5 * PANEL_WIDTH_IN else 1, width=width)
    batches = sorted({r.batch_size for r in records})
    colours = {b: colour(i) for i, b in enumerate(batches)}
    styles = series_styles(records)
    for ax, ((comparison, phase, model, seq_len), members) in zip(axes, by_panel.items(), strict=True):
        variants = sorted({r.variant for r in members}, key=variant_sort_key)
        slot = {v: i for i, v in enumerate(variants)}
        curves = list(group_by(members, "batch_size", "series").items())
        for index, ((batch, series), points) in enumerate(curves):
            points = sorted(points, key=lambda r: slot[r.variant])
            offset = dodge(index, len(curves), _SPREAD / max(len(curves) - 1, 1))
            draw_points(
                ax,
                [slot[r.variant] + offset for r in points],
                [r.efficiency for r in points],
                [efficiency_interval(r) for r in points],
                [is_result(r) for r in points],
                colours[batch],
                styles[series],
                line=False,
            )
        ax.axhline(1.0, color="0.3", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(variants)), variants, rotation=90 if len(variants) > 6 else 25, ha="center")
        ax.tick_params(axis="x", labelsize=7 if len(variants) > 6 else 8)
        ax.set_xlim(-0.6, len(variants) - 0.4)
        ax.set_ylabel("efficiency = speedup / ideal")
        ax.set_title(f"{comparison} ({phase}): {model}, sequence length {seq_len} tokens", fontsize=10)
        present = sorted({r.batch_size for r in members}, key=sort_key)
        legend(
            ax,
            {f"batch {b}": colours[b] for b in present},
            styles,
            lines=False,
            extra=[Line2D([], [], color="0.3", linestyle="--", label="speedup = ideal (efficiency 1)")],
        )
    note = (
        f"{MARKERS_NOTE} Efficiency = measured speedup / ideal speedup, ideal = baseline FLOPs / variant "
        "FLOPs per step; below 1 the time fell less than the FLOPs did (launch-bound or memory-bound steps)."
    )
    add_caption(fig, records, note)
    return fig
