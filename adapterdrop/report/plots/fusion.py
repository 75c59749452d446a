"""AdapterFusion: time per step of fusion, pruned fusion and fusion with AdapterDrop beside the baseline,
one panel per series and scenario (times of different machines differ by orders of magnitude)."""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure

from adapterdrop.report.figure import MARKERS_NOTE, add_caption, panels
from adapterdrop.report.format import interval, ms, times
from adapterdrop.report.names import variant_sort_key
from adapterdrop.report.plots.style import is_result
from adapterdrop.report.records import ReportRecord, group_by

BASELINE_COLOUR = "0.6"
VARIANT_COLOUR = "tab:blue"


def quartiles(record: ReportRecord) -> tuple[float, float]:
    """First and third quartile of a record's samples (seconds); the median ± half the IQR without them."""
    samples = record.time_samples_s
    if len(samples) >= 2:
        q1, q3 = np.percentile(samples, [25, 75])
        return float(q1), float(q3)
    half = (record.time_iqr_s or 0.0) / 2
    return record.time_median_s - half, record.time_median_s + half


def bar_label(record: ReportRecord) -> str:
    """The median, and the speedup with its interval (``baseline`` on the baseline's bar)."""
    if record.is_baseline:
        return f"{ms(record.time_median_s)} ms\nbaseline"
    ci = interval(record.speedup_ci, record.schema)
    text = f"{ms(record.time_median_s)} ms\n{times(record.speedup)}\n{ci}"
    return text if is_result(record) else text + "\nnot a result"


def draw_fusion(records: list[ReportRecord]) -> Figure:
    """Bars of the median time per step (whiskers: IQR), labelled with the speedup over the baseline."""
    by_panel = group_by(records, "series", "model", "phase", "batch_size", "seq_len")
    fig, axes = panels(len(by_panel), max_cols=2)
    for ax, ((series, model, phase, batch, seq_len), members) in zip(axes, by_panel.items(), strict=True):
        rows = sorted(members, key=lambda r: variant_sort_key(r.variant, r.baseline))
        heights = [r.time_median_s * 1e3 for r in rows]
        spread = [quartiles(r) for r in rows]
        yerr = np.array(
            [
                [h - q1 * 1e3 for h, (q1, _) in zip(heights, spread, strict=True)],
                [q3 * 1e3 - h for h, (_, q3) in zip(heights, spread, strict=True)],
            ]
        ).clip(min=0)
        bars = ax.bar(
            range(len(rows)),
            heights,
            0.7,
            yerr=yerr,
            capsize=3,
            color=[BASELINE_COLOUR if r.is_baseline else VARIANT_COLOUR for r in rows],
            edgecolor="white",
            hatch=[None if is_result(r) else "//" for r in rows],
        )
        ax.bar_label(bars, [bar_label(r) for r in rows], padding=3, fontsize=7)
        ax.set_xticks(range(len(rows)), [r.variant for r in rows], rotation=20, ha="right", fontsize=8)
        ax.margins(y=0.35)
        step = "training step" if phase == "train" else "forward"
        ax.set_ylabel(f"time per {step} (ms; median, whiskers = IQR)")
        title = f"{model} {phase}, batch {batch}, sequence length {seq_len} tokens"
        ax.set_title(textwrap.fill(f"{title} [{series}]" if series else title, 70), fontsize=10)
    note = (
        f"{MARKERS_NOTE} On each bar: its median time, and its speedup over the group's baseline (grey bar) "
        "= baseline median / its median, both from one run, with the 95% interval; above 1 is faster."
    )
    add_caption(fig, records, note)
    return fig
