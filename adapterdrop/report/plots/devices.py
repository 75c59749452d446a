"""Throughput per device and dtype: samples/s of each variant, one bar per series (the records are the
cells more than one series measured: see ``comparisons``)."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from adapterdrop.report.figure import add_caption, legend_outside, panels
from adapterdrop.report.names import sort_key, variant_sort_key
from adapterdrop.report.plots.fusion import quartiles
from adapterdrop.report.plots.style import colour, is_result
from adapterdrop.report.records import ReportRecord, group_by


def _widest_scenario(members: list[ReportRecord]) -> list[ReportRecord]:
    """The records of the (model, batch, length) scenario measured by the most series, largest batch first."""
    scenarios = group_by(members, "model", "batch_size", "seq_len")
    best = max(
        scenarios, key=lambda k: (len({r.series for r in scenarios[k]}), sort_key(k[1]), sort_key(k[2]))
    )
    return scenarios[best]


def draw_devices(records: list[ReportRecord]) -> Figure:
    """One panel per comparison and phase, at the scenario the most series measured."""
    by_panel = group_by(records, "comparison", "phase")
    fig, axes = panels(len(by_panel), max_cols=2)
    colours = {series: colour(i) for i, series in enumerate(sorted({r.series for r in records}))}
    for ax, ((comparison, phase), members) in zip(axes, by_panel.items(), strict=True):
        scenario = _widest_scenario(members)
        variants = sorted(
            {r.variant for r in scenario}, key=lambda v: variant_sort_key(v, scenario[0].baseline)
        )
        width = 0.8 / len(colours)
        for i, (series, tone) in enumerate(colours.items()):
            rows = {r.variant: r for r in scenario if r.series == series}
            xs = [x for x, v in enumerate(variants) if v in rows]
            picked = [rows[variants[x]] for x in xs]
            heights = [r.throughput_samples_s for r in picked]
            spread = [quartiles(r) for r in picked]  # a slower quartile time is a lower throughput
            low = [h - r.batch_size / q3 for h, r, (_, q3) in zip(heights, picked, spread, strict=True)]
            high = [r.batch_size / q1 - h for h, r, (q1, _) in zip(heights, picked, spread, strict=True)]
            ax.bar(
                [x + (i - (len(colours) - 1) / 2) * width for x in xs],
                heights,
                width,
                yerr=[[max(v, 0) for v in low], [max(v, 0) for v in high]],
                capsize=2,
                color=tone,
                edgecolor="white",
                hatch=[None if is_result(r) else "//" for r in picked],
            )
        ax.set_xticks(range(len(variants)), variants, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("throughput (samples/s; whiskers = IQR)")
        first = scenario[0]
        ax.set_title(
            f"{comparison} ({phase}): {first.model}, batch {first.batch_size}, "
            f"sequence length {first.seq_len}",
            fontsize=10,
        )
        legend_outside(ax, [Patch(color=tone, label=series) for series, tone in colours.items()])
    add_caption(
        fig,
        records,
        "Throughput = batch size / median time per step, per device and dtype; whiskers from the time's "
        "quartiles; hatched bars are noisy or were measured on a loaded machine. Only the variants measured "
        "by more than one series are drawn.",
    )
    return fig
