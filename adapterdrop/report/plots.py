"""One plot per standard comparison, drawn from the records that comparison selected.

Every function takes the selected records and the output folder, writes ``<name>.png`` and ``<name>.svg``
and returns their paths. Colour tells variants (or task counts) apart, line style and marker tell series
(machines, devices, dtypes, commits) apart; every figure carries the machine and versions in its caption.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from adapterdrop.report import paper
from adapterdrop.report.figure import add_caption, batch_axis, legend_outside, panels, save
from adapterdrop.report.records import (
    Record,
    group_by,
    num_layers,
    option,
    sort_key,
    variant_sort_key,
)
from adapterdrop.variants.multitask import layer_count_ideal

_COLOURS = (
    "tab:blue",
    "tab:orange",
    "tab:green",
    "tab:red",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:olive",
    "tab:cyan",
    "tab:gray",
)
_LINESTYLES = ("-", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (8, 2)))
_MARKERS = ("o", "s", "^", "D", "v", "P")
#: comparison name -> file stem of its plot (``STEM.png`` and ``STEM.svg``)
STEMS = {
    "training": "training_speedup",
    "inference": "inference_relative_speed",
    "parallel": "parallel_speedup",
    "fusion": "fusion_time",
    "efficiency": "efficiency",
    "memory": "memory",
    "devices": "throughput_per_device",
}

_MEMORY_KINDS = {
    "cuda_max_allocated": "CUDA max allocated",
    "host_allocated_peak": "host heap peak",
    "host_rss_growth": "host RSS growth",
}


def _colour(index: int) -> str:
    return _COLOURS[index % len(_COLOURS)]


def _series_styles(records: list[Record]) -> dict[str, dict[str, Any]]:
    series = sorted({r["series"] for r in records})
    return {
        s: {"linestyle": _LINESTYLES[i % len(_LINESTYLES)], "marker": _MARKERS[i % len(_MARKERS)]}
        for i, s in enumerate(series)
    }


def _legend(
    ax: Axes,
    colours: dict[str, str],
    styles: dict[str, dict[str, Any]],
    *,
    lines: bool = True,
    extra: list[Artist] | None = None,
) -> None:
    """Legend: one entry per colour (variant or task count), the panel's labelled reference artists,
    ``extra`` entries, then one entry per series (line style and marker) when there are several."""
    linestyle = "-" if lines else "none"
    handles: list[Artist] = [
        Line2D([], [], color=c, marker="o", linestyle=linestyle, label=name) for name, c in colours.items()
    ]
    handles += ax.get_legend_handles_labels()[0] + (extra or [])
    if len(styles) > 1:
        handles += [
            Line2D(
                [],
                [],
                color="0.35",
                label=series,
                **{**style, "linestyle": style["linestyle"] if lines else "none"},
            )
            for series, style in styles.items()
        ]
    legend_outside(ax, handles)


def _variants(records: list[Record]) -> list[str]:
    return sorted({r["variant"] for r in records}, key=variant_sort_key)


def _curves(records: list[Record]) -> list[tuple[str, str, list[Record]]]:
    """(variant, series, records) for every variant and series, variants in their natural order."""
    groups = group_by(records, "variant", "series")
    return sorted(
        ((v, s, members) for (v, s), members in groups.items()),
        key=lambda item: (variant_sort_key(item[0]), item[1]),
    )


def _sorted_by(records: list[Record], field: str) -> list[Record]:
    return sorted(records, key=lambda r: sort_key(r[field]))


def _optimizer_note(records: list[Record]) -> str:
    optimizers = sorted({str(r["optimizer"]) for r in records if r.get("optimizer")})
    return f" Optimizer: {', '.join(optimizers)}." if optimizers else ""


def _speedup_vs_batch(
    records: list[Record],
    out_dir: Path,
    stem: str,
    ylabel: str,
    baseline_label: str,
    note: str,
    decorate: Callable[[Axes], None] | None = None,
) -> list[Path]:
    """Speedup against batch size, one panel per (model, sequence length), one curve per variant/series."""
    by_panel = group_by(records, "model", "seq_len")
    fig, axes = panels(len(by_panel))
    colours = {v: _colour(i) for i, v in enumerate(_variants(records))}
    styles = _series_styles(records)
    for ax, ((model, seq_len), members) in zip(axes, by_panel.items(), strict=True):
        for variant, series, curve in _curves(members):
            curve = _sorted_by(curve, "batch_size")
            ax.plot(
                [r["batch_size"] for r in curve],
                [r["speedup"] for r in curve],
                color=colours[variant],
                **styles[series],
            )
        ax.axhline(1.0, color="0.3", linewidth=1, linestyle="--", label=baseline_label)
        if decorate:
            decorate(ax)
        batch_axis(ax, [r["batch_size"] for r in members])
        ax.set_ylabel(ylabel)
        ax.set_title(f"{model}, sequence length {seq_len} tokens")
        _legend(ax, {v: colours[v] for v in _variants(members)}, styles)
    add_caption(fig, records, note)
    return save(fig, out_dir, stem)


def plot_training(records: list[Record], out_dir: Path) -> list[Path]:
    """Training-step speedup of adapter and AdapterDrop variants over full fine-tuning, against batch size."""

    def paper_line(ax: Axes) -> None:
        ax.axhline(
            paper.ADAPTER_TRAINING_SPEEDUP,
            color="tab:gray",
            linewidth=1,
            linestyle=":",
            label=f"paper: adapter up to {paper.ADAPTER_TRAINING_SPEEDUP:.1f}× "
            f"({paper.ADAPTER_TRAINING_SOURCE})",
        )

    note = (
        "Speedup = median training-step time of `full` / that of the variant, both measured "
        "interleaved in one process; a step is forward + backward + optimizer step."
        + _optimizer_note(records)
    )
    return _speedup_vs_batch(
        records,
        out_dir,
        STEMS["training"],
        "speedup over full fine-tuning (×)",
        "full fine-tuning (= 1)",
        note,
        paper_line,
    )


def plot_inference(records: list[Record], out_dir: Path) -> list[Path]:
    """Inference speed of the adapter model relative to the full model, against batch size."""
    low, high = paper.ADAPTER_INFERENCE_RELATIVE_SPEED

    def paper_band(ax: Axes) -> None:
        ax.axhspan(
            low,
            high,
            color="tab:gray",
            alpha=0.2,
            label=f"paper: {low:.0%}–{high:.0%} of full speed ({paper.ADAPTER_INFERENCE_SOURCE})",
        )

    note = (
        "Relative speed = median forward time of `full` / that of `adapter` (interleaved, one process); "
        "below 1 means the adapter model is slower."
    )
    return _speedup_vs_batch(
        records,
        out_dir,
        STEMS["inference"],
        "speed relative to the full model (×)",
        "full model (= 1)",
        note,
        paper_band,
    )


def _tasks(record: Record) -> int:
    return option(record["variant"], "tasks")


def _dropped(record: Record) -> int:
    return option(record["variant"], "n")


def _paper_parallel(ax: Axes) -> None:
    """The paper's speedups for 5 dropped layers: the 2–16 task range and the 8-task value."""
    low, high = paper.PARALLEL_K5_SPEEDUP_RANGE
    k = paper.PARALLEL_DROPPED
    ax.errorbar(
        [k],
        [(low + high) / 2],
        yerr=[[(high - low) / 2], [(high - low) / 2]],
        fmt="none",
        ecolor="0.45",
        elinewidth=4,
        alpha=0.5,
        capsize=0,
        label=f"paper: K={k}, 2–16 tasks ({paper.PARALLEL_SOURCE})",
    )
    ax.plot(
        [k],
        [paper.PARALLEL_K5_SPEEDUP_8_TASKS],
        marker="*",
        markersize=11,
        color="0.3",
        linestyle="none",
        label=f"paper: K={k}, 8 tasks ({paper.PARALLEL_SOURCE})",
    )


def plot_parallel(records: list[Record], out_dir: Path) -> list[Path]:
    """Parallel multi-task inference: speedup against dropped layers K, one curve per task count N.

    The ideal curves (FLOPs dashed, layer counts dotted) depend on the model only, so they are drawn once
    per task count, from the first series.
    """
    by_panel = group_by(records, "model", "batch_size", "seq_len")
    fig, axes = panels(len(by_panel))
    task_counts = sorted({_tasks(r) for r in records})
    colours = {n: _colour(i) for i, n in enumerate(task_counts)}
    styles = _series_styles(records)
    for ax, ((model, batch, seq_len), members) in zip(axes, by_panel.items(), strict=True):
        ideal_drawn = set()
        for (tasks, series), curve in group_by(members, _tasks, "series").items():
            curve = sorted(curve, key=_dropped)
            ks = [_dropped(r) for r in curve]
            ax.plot(ks, [r["speedup"] for r in curve], color=colours[tasks], **styles[series])
            if tasks in ideal_drawn:
                continue
            ideal_drawn.add(tasks)
            if all(r.get("ideal_speedup") is not None for r in curve):
                ax.plot(
                    ks,
                    [r["ideal_speedup"] for r in curve],
                    color=colours[tasks],
                    linestyle="--",
                    linewidth=1.2,
                )
            layers = num_layers(model)
            ax.plot(
                ks,
                [layer_count_ideal(tasks, k, layers) for k in ks],
                color=colours[tasks],
                linestyle=":",
                linewidth=1.2,
            )
        ax.axhline(1.0, color="0.3", linewidth=0.8)
        if paper.PARALLEL_DROPPED in {_dropped(r) for r in members}:
            _paper_parallel(ax)
        ax.set_xlabel("dropped layers K (no adapters in layers 0..K−1)")
        ax.set_ylabel("speedup over no dropped layers (×)")
        ax.set_xticks(sorted({_dropped(r) for r in members}))
        ax.set_title(f"{model}, batch {batch}, sequence length {seq_len} tokens")
        ideals: list[Artist] = [
            Line2D([], [], color="0.35", linestyle="--", label="ideal from FLOPs"),
            Line2D([], [], color="0.35", linestyle=":", label="ideal from layer counts"),
        ]
        present = sorted({_tasks(r) for r in members})
        _legend(ax, {f"N = {n} tasks (measured)": colours[n] for n in present}, styles, extra=ideals)
    note = (
        "Speedup = median time of `parallel:tasks=N` / that of `parallel:tasks=N,n=K` (interleaved, "
        "one process). Layer-count ideal = N·L / (K + N·(L − K)) for L layers, counting the K dropped "
        "layers as run once and the rest once per task; the FLOPs ideal is each record's `ideal_speedup`."
    )
    add_caption(fig, records, note)
    return save(fig, out_dir, STEMS["parallel"])


def _quartiles(record: Record) -> tuple[float, float]:
    samples = record.get("time_samples_s") or []
    if len(samples) >= 2:
        q1, q3 = np.percentile(samples, [25, 75])
        return float(q1), float(q3)
    half = (record.get("time_iqr_s") or 0.0) / 2
    return record["time_median_s"] - half, record["time_median_s"] + half


def plot_fusion(records: list[Record], out_dir: Path) -> list[Path]:
    """AdapterFusion: time per step of fusion, pruned fusion and fusion with AdapterDrop vs the baseline.

    One panel per series and scenario: times of different machines differ by orders of magnitude.
    """
    by_panel = group_by(records, "series", "model", "phase", "batch_size", "seq_len")
    fig, axes = panels(len(by_panel), max_cols=2)
    for ax, ((series, model, phase, batch, seq_len), members) in zip(axes, by_panel.items(), strict=True):
        rows = sorted(members, key=lambda r: (r["variant"] != r["baseline"], variant_sort_key(r["variant"])))
        heights = [r["time_median_s"] * 1e3 for r in rows]
        quartiles = [_quartiles(r) for r in rows]
        yerr = np.array(
            [
                [h - q1 * 1e3 for h, (q1, _) in zip(heights, quartiles, strict=True)],
                [q3 * 1e3 - h for h, (_, q3) in zip(heights, quartiles, strict=True)],
            ]
        ).clip(min=0)
        colours = ["0.6" if r["variant"] == r["baseline"] else "tab:blue" for r in rows]
        bars = ax.bar(range(len(rows)), heights, 0.7, yerr=yerr, capsize=3, color=colours)
        ax.bar_label(bars, [f"{r['speedup']:.2f}×" for r in rows], padding=3, fontsize=8)
        ax.set_xticks(range(len(rows)), [r["variant"] for r in rows], rotation=20, ha="right", fontsize=8)
        ax.margins(y=0.15)
        step = "training step" if phase == "train" else "forward"
        ax.set_ylabel(f"time per {step} (ms; median, whiskers = IQR)")
        title = f"{model} {phase}, batch {batch}, sequence length {seq_len} tokens"
        ax.set_title(textwrap.fill(f"{title} [{series}]" if series else title, 70), fontsize=10)
    note = (
        "Number on each bar: speedup over the group's baseline (grey bar), measured interleaved in one "
        "process; above 1 is faster than the baseline."
    )
    add_caption(fig, records, note)
    return save(fig, out_dir, STEMS["fusion"])


def plot_efficiency(records: list[Record], out_dir: Path) -> list[Path]:
    """Measured against ideal (FLOPs) speedup, one panel per comparison and phase."""
    by_panel = group_by(records, "comparison", "phase")
    fig, axes = panels(len(by_panel))
    styles = _series_styles(records)
    for ax, ((comparison, phase), members) in zip(axes, by_panel.items(), strict=True):
        colours = {v: _colour(i) for i, v in enumerate(_variants(members))}
        for variant, series, points in _curves(members):
            ax.plot(
                [r["ideal_speedup"] for r in points],
                [r["speedup"] for r in points],
                linestyle="none",
                marker=styles[series]["marker"],
                color=colours[variant],
                alpha=0.85,
            )
        values = [v for r in members for v in (r["ideal_speedup"], r["speedup"])]
        low, high = min(values + [1.0]) * 0.9, max(values + [1.0]) * 1.1
        ax.plot(
            [low, high],
            [low, high],
            color="0.3",
            linestyle="--",
            linewidth=1,
            label="measured = ideal (efficiency 1)",
        )
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_xlabel("ideal speedup from FLOPs (×)")
        ax.set_ylabel("measured speedup (×)")
        ax.set_title(f"{comparison} ({phase})")
        _legend(ax, colours, styles, lines=False)
    note = (
        "Efficiency = measured / ideal speedup; points below the dashed line fall short of what the "
        "FLOPs saved would allow. Each point is one batch size / sequence length."
    )
    add_caption(fig, records, note)
    return save(fig, out_dir, STEMS["efficiency"])


def _memory_unit(values: list[float]) -> tuple[str, float]:
    """MiB, or KiB when every value is below 1 MiB (host RSS growth of a tiny model)."""
    return ("MiB", 2**-20) if max(values, default=0) >= 2**20 else ("KiB", 2**-10)


def plot_memory(records: list[Record], out_dir: Path) -> list[Path]:
    """Peak memory per variant against batch size, one panel per memory kind, comparison, phase, model and
    sequence length (CUDA allocations and host RSS growth are different quantities)."""
    by_panel = group_by(records, "memory_kind", "comparison", "phase", "model", "seq_len")
    fig, axes = panels(len(by_panel))
    styles = _series_styles(records)
    for ax, ((kind, comparison, phase, model, seq_len), members) in zip(axes, by_panel.items(), strict=True):
        colours = {v: _colour(i) for i, v in enumerate(_variants(members))}
        unit, scale = _memory_unit([r["peak_memory_bytes"] for r in members])
        for variant, series, curve in _curves(members):
            curve = _sorted_by(curve, "batch_size")
            ax.plot(
                [r["batch_size"] for r in curve],
                [r["peak_memory_bytes"] * scale for r in curve],
                color=colours[variant],
                **styles[series],
            )
        ax.set_ylabel(f"peak memory ({unit}, {_MEMORY_KINDS.get(kind, kind)})")
        batch_axis(ax, [r["batch_size"] for r in members])
        ax.set_title(f"{comparison} ({phase}): {model}, sequence length {seq_len}")
        _legend(ax, colours, styles)
    note = (
        "Peak memory of the measured steps above what was allocated before them: CUDA max allocated on a "
        "GPU, growth of the process's resident memory (psutil) on the CPU."
    )
    add_caption(fig, records, note)
    return save(fig, out_dir, STEMS["memory"])


def _widest_scenario(members: list[Record]) -> list[Record]:
    """The records of the (model, batch, length) scenario measured by the most series, largest batch first."""
    scenarios = group_by(members, "model", "batch_size", "seq_len")
    best = max(
        scenarios, key=lambda k: (len({r["series"] for r in scenarios[k]}), sort_key(k[1]), sort_key(k[2]))
    )
    return scenarios[best]


def plot_devices(records: list[Record], out_dir: Path) -> list[Path]:
    """Throughput of each variant per device / dtype series, one panel per comparison and phase."""
    by_panel = group_by(records, "comparison", "phase")
    fig, axes = panels(len(by_panel), max_cols=2)
    styles = _series_styles(records)
    colours = {series: _colour(i) for i, series in enumerate(styles)}
    for ax, ((comparison, phase), members) in zip(axes, by_panel.items(), strict=True):
        scenario = _widest_scenario(members)
        variants = _variants(scenario)
        width = 0.8 / len(colours)
        for i, (series, colour) in enumerate(colours.items()):
            rows = {r["variant"]: r for r in scenario if r["series"] == series}
            xs = [x for x, v in enumerate(variants) if v in rows]
            ax.bar(
                [x + (i - (len(colours) - 1) / 2) * width for x in xs],
                [rows[variants[x]]["throughput_samples_s"] for x in xs],
                width,
                color=colour,
            )
        ax.set_xticks(
            range(len(variants)), variants, rotation=35, ha="right", fontsize=7 if len(variants) > 5 else 8
        )
        ax.set_ylabel("throughput (samples/s)")
        first = scenario[0]
        ax.set_title(
            f"{comparison} ({phase}): {first['model']}, batch {first['batch_size']}, "
            f"sequence length {first['seq_len']}",
            fontsize=10,
        )
        legend_outside(ax, [Patch(color=colour, label=series) for series, colour in colours.items()])
    add_caption(fig, records, "Throughput = batch size / median time per step, per device and dtype.")
    return save(fig, out_dir, STEMS["devices"])


PLOTS: dict[str, Callable[[list[Record], Path], list[Path]]] = {
    "training": plot_training,
    "inference": plot_inference,
    "parallel": plot_parallel,
    "fusion": plot_fusion,
    "efficiency": plot_efficiency,
    "memory": plot_memory,
    "devices": plot_devices,
}
