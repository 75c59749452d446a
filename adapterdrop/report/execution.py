"""Execution modes in a report: the same cells measured eager, compiled and/or with CUDA graphs.

A record's mode (``exec``) is part of its series (:mod:`adapterdrop.report.records`), so every standard
plot already draws each mode as a series of its own. This comparison sets the modes of one cell side by
side, per (series without the mode, comparison, model, phase, sequence length):

- the plot draws each variant's median step time against batch size, one line style per mode (whiskers:
  the quartiles of the step time). Modes are separate runs, so no ratio between modes is drawn or printed;
- the table gives, per variant, batch and mode, the median, the baseline's median *of the same run* and
  the speedup with its 95% interval, and the *direction* that interval states: ``faster`` (it lies above
  1), ``slower`` (below 1) or ``tie`` (it holds 1). A direction is stated only for a result (not noisy,
  not loaded, with an interval). A row is marked where two modes state different directions: the
  comparison changes its verdict between modes.
"""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from adapterdrop.report.figure import add_caption, batch_axis, panels
from adapterdrop.report.format import MISSING, fixed, interval, ms, percent, times
from adapterdrop.report.names import sort_key, variant_sort_key
from adapterdrop.report.plots.fusion import quartiles
from adapterdrop.report.plots.style import colour, draw_points, is_result, legend
from adapterdrop.report.records import ReportRecord, group_by

Records = list[ReportRecord]
#: the modes in the order a table and a legend list them
_MODE_ORDER = ("eager", "compile", "cudagraph")
_STYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D")
_CHANGED = "**changes**"


def setting(record: ReportRecord) -> str:
    """The record's series label without its mode: what must match for two modes to be compared (the
    mode is a series fact formatted as itself, so it is one `` · `` part of the label)."""
    return " · ".join(part for part in record.series.split(" · ") if part and part != record.exec)


def _cell(record: ReportRecord) -> tuple:
    return (setting(record), record.comparison, record.model, record.phase, record.seq_len, record.batch_size)


def _mode_key(mode: str) -> tuple:
    kind = mode.partition(":")[0]
    return (_MODE_ORDER.index(kind) if kind in _MODE_ORDER else len(_MODE_ORDER), mode)


def select(records: Records) -> Records:
    """Measured records of the cells measured in more than one execution mode (baselines included)."""
    measured = [r for r in records if r.measured]
    cells = group_by(measured, _cell)
    return [r for members in cells.values() if len({m.exec for m in members}) > 1 for r in members]


def direction(record: ReportRecord) -> str | None:
    """``faster``, ``slower`` or ``tie`` from the speedup's 95% interval; None for a baseline or a record
    whose speedup is not a result."""
    if record.is_baseline or record.speedup is None or not record.speedup_ci or record.caveats:
        return None
    low, high = record.speedup_ci
    return "faster" if low > 1 else "slower" if high < 1 else "tie"


def changed(members: Records) -> bool:
    """True when the modes of one variant and cell state different directions."""
    return len({d for r in members if (d := direction(r)) is not None}) > 1


def draw(records: Records) -> Figure:
    """Median step time against batch size per variant, one line style per mode; one panel per setting,
    comparison, model, phase and sequence length."""
    by_panel = group_by(records, setting, "comparison", "model", "phase", "seq_len")
    fig, axes = panels(len(by_panel))
    modes = sorted({r.exec for r in records}, key=_mode_key)
    styles = {m: {"linestyle": _STYLES[i % 4], "marker": _MARKERS[i % 4]} for i, m in enumerate(modes)}
    for ax, ((where, comparison, model, phase, seq_len), members) in zip(axes, by_panel.items(), strict=True):
        variants = sorted(
            {r.variant for r in members}, key=lambda v: variant_sort_key(v, members[0].baseline)
        )
        colours = {v: colour(i) for i, v in enumerate(variants)}
        for (variant, mode), curve in group_by(members, "variant", "exec").items():
            curve = sorted(curve, key=lambda r: sort_key(r.batch_size))
            draw_points(
                ax,
                [r.batch_size for r in curve],
                [r.time_median_s * 1e3 for r in curve],
                [[q * 1e3 for q in quartiles(r)] for r in curve],
                [is_result(r) for r in curve],
                colours[variant],
                styles[mode],
            )
        ax.set_yscale("log")
        for axis_format in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
            axis_format(FuncFormatter(lambda value, _: f"{value:g}"))
        batch_axis(ax, [r.batch_size for r in members])
        ax.set_ylabel("median step time (ms)")
        ax.set_title(f"{comparison}: {model} {phase}, sequence {seq_len}" + (f" [{where}]" if where else ""))
        legend(ax, colours, {m: styles[m] for m in modes if m in {r.exec for r in members}})
    add_caption(
        fig,
        records,
        "Median step time per variant in each execution mode (line style); whiskers: the step time's "
        "quartiles; hollow markers: noisy or measured on a loaded machine. Modes are separate runs: compare "
        "them by the speedups over each run's own baseline (report table 'Execution modes').",
    )
    return fig


_HEADER = [
    "variant",
    "batch",
    "mode",
    "median (ms)",
    "IQR (% of median)",
    "baseline median (ms)",
    "speedup [95% CI]",
    "direction",
    "setup (s)",
    "recompiles",
    "between modes",
]


def _row(record: ReportRecord, change: bool) -> list[str]:
    reference = record.reference
    if record.is_baseline:
        speedup = "baseline"
    elif record.speedup is None:
        speedup = MISSING
    else:
        speedup = f"{times(record.speedup)} {interval(record.speedup_ci, record.schema)}"
    stated = direction(record)
    return [
        f"`{record.variant}`",
        str(record.batch_size),
        record.exec,
        ms(record.time_median_s),
        percent(record.time_iqr_s / record.time_median_s) if record.time_iqr_s is not None else MISSING,
        ms(reference.time_median_s) if reference is not None else MISSING,
        speedup,
        stated or ("–" if record.is_baseline else "not a result"),
        fixed(record.exec_setup_s, 3) if record.exec_setup_s is not None else MISSING,
        str(record.exec_recompiles) if record.exec_recompiles is not None else MISSING,
        _CHANGED if change else "",
    ]


def table(records: Records) -> list[str]:
    """Markdown: one table per setting, comparison, model, phase and sequence length; rows per variant,
    batch and mode, each speedup beside the medians it is made of."""
    selected = select(records)
    if not selected:
        return []
    lines = [
        "## Execution modes",
        "",
        "The same cells measured in several execution modes (`eager`, `compile[:mode=M]`: torch.compile, "
        "`cudagraph`: CUDA graph replay; docs/execution.md). Each mode is a run of its own: speedup = the "
        "baseline median / the median, both from that mode's run, with its 95% interval; direction: "
        "*faster* (interval above 1), *slower* (below 1) or *tie* (holds 1), stated for results only. "
        f"{_CHANGED}: the modes state different directions. Setup: seconds compiling or capturing before "
        "timing (inductor's on-disk cache shortens it); recompiles: beyond one graph per drawn value.",
        "",
    ]
    changes = []
    for (where, comparison, model, phase, seq_len), members in group_by(
        selected, setting, "comparison", "model", "phase", "seq_len"
    ).items():
        baseline = members[0].baseline
        rows = []
        cells = sorted(
            group_by(members, "variant", "batch_size").items(),
            key=lambda item: (variant_sort_key(item[0][0], baseline), item[0][1]),
        )
        for (variant, batch), modes in cells:
            change = changed(modes)
            ordered = sorted(modes, key=lambda r: _mode_key(r.exec))
            rows += [_row(r, change) for r in ordered]
            if change:
                stated = ", ".join(f"{r.exec} {direction(r)}" for r in ordered if direction(r))
                changes.append(f"- {comparison}: {model} {phase} b={batch} s={seq_len} `{variant}`: {stated}")
        title = f"{comparison}: {model} {phase}, sequence {seq_len}" + (f" [{where}]" if where else "")
        lines += [f"### {title} (baseline `{baseline}`)", "", "| " + " | ".join(_HEADER) + " |"]
        lines += ["|" + "---|" * len(_HEADER)] + ["| " + " | ".join(row) + " |" for row in rows] + [""]
    lines += ["Verdicts that change between modes:", ""] + (changes or ["- none"]) + [""]
    return lines
