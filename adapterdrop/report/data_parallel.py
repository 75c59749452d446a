"""Data-parallel records (``adapterdrop ddp``) in a report: which records, the scaling plot, the table.

A data-parallel record names its ``backend``; the report's other comparisons leave such records out (they
compare single processes). Here, per (model, per-process batch, sequence length):

- throughput of the whole group (samples/s) against the number of processes, one curve per variant (and
  unused-parameter mode when a run measured both), whiskers from the step time's quartiles;
- scaling efficiency (throughput at w / (w x throughput at 1), from the same run) against the number of
  processes, with its 95% interval, 1 = perfect scaling;
- bytes all-reduced per step per variant (log scale), counted by the communication hook.

:func:`table` writes the same records as markdown, every ratio beside the medians it is made of, and for
a variant measured under both unused-parameter modes in one run the speed of one relative to the other.
"""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from adapterdrop.report.figure import MARKERS_NOTE, add_caption, panels
from adapterdrop.report.format import MISSING, RATIO_DECIMALS, fixed, interval, ms, percent, times
from adapterdrop.report.names import sort_key, variant_sort_key
from adapterdrop.report.plots.fusion import quartiles
from adapterdrop.report.plots.style import colour, dodge, draw_points, is_result, legend, series_styles
from adapterdrop.report.ratios import ratio
from adapterdrop.report.records import ReportRecord, group_by

Records = list[ReportRecord]
#: distance between neighbouring curves along the process axis (a fraction of one process)
_DODGE = 0.04


def is_data_parallel(record: ReportRecord) -> bool:
    """True for a record of a data-parallel run (it names its torch.distributed backend)."""
    return bool(record.backend)


def select(records: Records) -> Records:
    """Measured data-parallel records."""
    return [r for r in records if r.measured and is_data_parallel(r)]


def _label(record: ReportRecord, modes: set[str]) -> str:
    return f"{record.variant} ({record.ddp_unused})" if len(modes) > 1 else record.variant


def _order(record: ReportRecord) -> tuple:
    return (variant_sort_key(record.variant, record.baseline), record.ddp_unused)


def _human_bytes(size: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size:.0f} B"


def _throughput_whiskers(record: ReportRecord) -> list[float]:
    """Throughput at the step time's third and first quartile (a slower quartile is a lower throughput)."""
    q1, q3 = quartiles(record)
    samples = record.world_size * record.batch_size
    return [samples / q3, samples / q1]


def _curves(ax: Axes, members: Records, modes: set[str], colours: dict, styles: dict, kind: str) -> None:
    curves = sorted(group_by(members, lambda r: _label(r, modes), "series").items(), key=lambda i: i[0])
    for index, ((label, series), curve) in enumerate(curves):
        curve = sorted(curve, key=lambda r: r.world_size)
        offset = dodge(index, len(curves), _DODGE)
        if kind == "throughput":
            ys = [r.throughput_samples_s for r in curve]
            spans = [_throughput_whiskers(r) for r in curve]
        else:
            ys = [r.scaling_efficiency for r in curve]
            spans = [r.scaling_efficiency_ci for r in curve]
        kept = [i for i, y in enumerate(ys) if y is not None]
        draw_points(
            ax,
            [curve[i].world_size + offset for i in kept],
            [ys[i] for i in kept],
            [spans[i] for i in kept],
            [is_result(curve[i]) for i in kept],
            colours[label],
            styles[series],
        )


def _bytes_panel(ax: Axes, members: Records, modes: set[str], colours: dict) -> None:
    widest = max(r.world_size for r in members)
    bars = sorted(
        (r for r in members if r.world_size == widest and r.comm_bytes_per_step),
        key=lambda r: (r.series, *_order(r)),
    )
    labels = [_label(r, modes) + (f"\n{r.series}" if r.series else "") for r in bars]
    heights = [r.comm_bytes_per_step for r in bars]
    ax.bar(range(len(bars)), heights, color=[colours[_label(r, modes)] for r in bars], edgecolor="white")
    for x, height in enumerate(heights):
        ax.annotate(_human_bytes(height), (x, height), ha="center", va="bottom", fontsize=7)
    ax.set_yscale("log")
    ax.set_xticks(range(len(bars)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("bytes all-reduced per step and rank")
    ax.set_title("communication volume per step")


def draw(records: Records) -> Figure:
    """Throughput, scaling efficiency and bytes per step: one row of panels per (model, batch, length)."""
    cells = group_by(records, "model", "batch_size", "seq_len")
    fig, axes = panels(3 * len(cells), max_cols=3)
    modes = {r.ddp_unused for r in records}
    labels = list(dict.fromkeys(_label(r, modes) for r in sorted(records, key=_order)))
    colours = {label: colour(i) for i, label in enumerate(labels)}
    styles = series_styles(records)
    for row, ((model, batch, seq_len), members) in enumerate(cells.items()):
        throughput, efficiency, volume = axes[3 * row : 3 * row + 3]
        sizes = sorted({r.world_size for r in members})
        _curves(throughput, members, modes, colours, styles, "throughput")
        throughput.set_ylabel("samples/s (whole group)")
        throughput.set_title(f"{model}, batch {batch} per process, sequence {seq_len}", fontsize=10)
        _curves(efficiency, members, modes, colours, styles, "efficiency")
        efficiency.axhline(1.0, color="0.3", linewidth=1, linestyle="--", label="perfect scaling")
        efficiency.set_ylabel("scaling efficiency")
        efficiency.set_title("throughput at w / (w × throughput at 1)", fontsize=10)
        for ax in (throughput, efficiency):
            ax.set_xticks(sizes, [str(s) for s in sizes])
            ax.set_xlabel("processes (world size)")
        shown = [label for label in labels if label in {_label(r, modes) for r in members}]
        legend(efficiency, {label: colours[label] for label in shown}, styles)
        _bytes_panel(volume, members, modes, colours)
    add_caption(
        fig,
        records,
        f"{MARKERS_NOTE} Throughput = processes × per-process batch / median step time (whiskers: the step "
        "time's quartiles); scaling efficiency from the same run as world size 1 (bars: 95% interval); bytes "
        "counted by a DDP communication hook at the largest world size (the mean over draws for robust "
        "AdapterDrop).",
    )
    return fig


_HEADER = [
    "variant",
    "unused",
    "processes",
    "median (ms)",
    "IQR (% of median)",
    "samples/s",
    "baseline median (ms)",
    "speedup [95% CI]",
    "median at 1 process (ms)",
    "scaling efficiency [95% CI]",
    "bytes/step",
    "comm alone (ms)",
    "no-comm step (ms)",
    "exposed (ms)",
    "overlap",
    "verdict",
]


def _row(record: ReportRecord, single: ReportRecord | None, notes: dict[str, int]) -> list[str]:
    """One table row; ``single`` is the same variant and mode at world size 1 in the same run."""
    ddp = record.ddp or {}
    reference = record.reference
    if record.is_baseline:
        speedup = "baseline"
    elif record.speedup is None:
        speedup = MISSING
    else:
        speedup = f"{times(record.speedup)} {interval(record.speedup_ci, record.schema)}"
    if record.scaling_efficiency is None:
        scaling = MISSING
    else:
        efficiency = f"{record.scaling_efficiency:.{RATIO_DECIMALS}f}"
        scaling = f"{efficiency} {interval(record.scaling_efficiency_ci, record.schema)}"
    reasons = [notes.setdefault(reason, len(notes) + 1) for reason in record.caveats]
    verdict = f"noisy [{', '.join(map(str, reasons))}]" if reasons else "result"
    return [
        f"`{record.variant}`",
        record.ddp_unused,
        str(record.world_size),
        ms(record.time_median_s),
        percent(record.time_iqr_s / record.time_median_s) if record.time_iqr_s is not None else MISSING,
        fixed(record.throughput_samples_s),
        ms(reference.time_median_s) if reference is not None else MISSING,
        speedup,
        ms(single.time_median_s) if single is not None else MISSING,
        scaling,
        str(record.comm_bytes_per_step) if record.comm_bytes_per_step is not None else MISSING,
        ms(record.comm_time_s),
        ms(ddp.get("step_without_comm_median_s")),
        ms(record.comm_exposed_s),
        percent(record.comm_overlap) if record.comm_overlap is not None else MISSING,
        verdict,
    ]


def _same_run(record: ReportRecord) -> tuple:
    """What a record shares with its world-size-1 counterpart: series, run, scenario but the world size."""
    return (record.series, record.run_id, record.ddp_unused, record.variant, record.model, record.batch_size)


def _modes_compared(members: Records) -> list[str]:
    """For every variant and world size measured under both unused-parameter modes in one run: the speed
    of ``per-draw`` relative to ``find`` (find's median / per-draw's), with its 95% interval."""
    lines = []
    pairs = group_by(members, "run_id", "world_size", "variant")
    for pair in pairs.values():
        modes = {r.ddp_unused: r for r in pair}
        if {"find", "per-draw"} <= set(modes):
            find, per_draw = modes["find"], modes["per-draw"]
            measured = ratio(find, per_draw)
            verdict = "a result" if measured.is_result else "noisy: not a result"
            lines.append(
                f"- `{per_draw.variant}`, {per_draw.world_size} process(es), per-draw over find: "
                f"{times(measured.value)} {interval(measured.interval, per_draw.schema)} "
                f"(`find` {ms(find.time_median_s)} ms / `per-draw` {ms(per_draw.time_median_s)} ms; "
                f"{verdict})"
            )
    if not lines:
        return []
    return ["Unused-parameter modes (speed of per-draw relative to find, one run):", "", *lines, ""]


def table(records: Records) -> list[str]:
    """Markdown: one table per series and (model, batch, length); every ratio beside its medians."""
    selected = select(records)
    if not selected:
        return []
    lines = [
        "## Data-parallel training",
        "",
        "DistributedDataParallel through torchrun; batch per process. Median step time is the slowest "
        "rank's per sample; samples/s = processes × batch / median; speedup = the baseline's median / this "
        "median at the same world size; scaling efficiency = median at 1 process / median at w (the same "
        "variant and mode, one run). Bytes/step: what a rank all-reduces per step (communication hook). "
        "Exposed = median step − median no-comm step; overlap = 1 − exposed / comm alone, clipped to [0, 1].",
        "",
    ]
    at_one = {_same_run(r): r for r in selected if r.world_size == 1}
    for (series, model, batch, seq_len), members in group_by(
        selected, "series", "model", "batch_size", "seq_len"
    ).items():
        notes: dict[str, int] = {}
        rows = sorted(members, key=lambda r: (*_order(r), sort_key(r.world_size)))
        title = f"{model}, batch {batch} per process, sequence {seq_len}" + (f" [{series}]" if series else "")
        lines += [f"### {title}", "", "| " + " | ".join(_HEADER) + " |", "|" + "---|" * len(_HEADER)]
        lines += ["| " + " | ".join(_row(r, at_one.get(_same_run(r)), notes)) + " |" for r in rows]
        lines += [""] + [f"[{number}] {reason}  " for reason, number in notes.items()] + [""]
        lines += _modes_compared(members)
    return lines
