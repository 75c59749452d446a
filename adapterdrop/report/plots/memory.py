"""Memory a step needs, per variant: stacked bars of parameters, optimizer state, gradients and activations.

One panel per (series, how memory was read, comparison, phase, model, baseline), at one scenario: the
largest batch and sequence length every variant of the panel was measured at (where activations weigh
most). Schema-2 records hold the parts, which add up to the total; schema-1 records hold only a transient
peak above what was allocated before the step (weights and optimizer state left out), drawn as a single
hatched bar.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from adapterdrop.report.figure import add_caption, legend_outside, panels
from adapterdrop.report.format import fixed
from adapterdrop.report.names import variant_sort_key
from adapterdrop.report.records import ReportRecord, group_by

#: record field -> (legend label, colour), bottom to top
PARTS: dict[str, tuple[str, str]] = {
    "memory_params_bytes": ("parameters", "tab:blue"),
    "memory_optimizer_bytes": ("optimizer state", "tab:orange"),
    "memory_grads_bytes": ("gradients", "tab:green"),
    "memory_activations_bytes": ("activations and temporaries", "tab:red"),
}
SCHEMA1_LABEL = "schema 1: transient peak above memory held before the step (no weights, no optimizer state)"
#: how the transient peak was read, in words
KINDS = {
    "cuda_max_allocated": "CUDA caching allocator's peak (max allocated)",
    "host_allocated_peak": "host: peak of glibc malloc's bytes in use (sampled every ms)",
    "host_rss_growth": "host: resident set growth",
}


def has_parts(record: ReportRecord) -> bool:
    return all(getattr(record, name) is not None for name in PARTS)


def _unit(largest: float) -> tuple[str, float]:
    if largest >= 2**31:
        return "GiB", 2**-30
    return ("MiB", 2**-20) if largest >= 2**20 else ("KiB", 2**-10)


def _scenario(members: list[ReportRecord]) -> list[ReportRecord]:
    """The records of the scenario most variants were measured at, the largest batch and length first."""
    scenarios = group_by(members, "batch_size", "seq_len")
    best = max(scenarios, key=lambda k: (len(scenarios[k]), k[0], k[1]))
    return sorted(scenarios[best], key=lambda r: variant_sort_key(r.variant, r.baseline))


def draw_memory(records: list[ReportRecord]) -> Figure:
    by_panel = group_by(records, "series", "memory_kind", "comparison", "phase", "model", "baseline")
    fig, axes = panels(len(by_panel), max_cols=2)
    for ax, (key, members) in zip(axes, by_panel.items(), strict=True):
        series, kind, comparison, phase, model, _ = key
        rows = _scenario(members)
        unit, scale = _unit(max(r.peak_memory_bytes for r in rows))
        xs = list(range(len(rows)))
        if any(has_parts(r) for r in rows):
            bottoms = [0.0] * len(rows)
            for name, (label, tone) in PARTS.items():
                heights = [(getattr(r, name) or 0) * scale if has_parts(r) else 0.0 for r in rows]
                ax.bar(xs, heights, 0.7, bottom=bottoms, color=tone, label=label)
                bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
        if not all(has_parts(r) for r in rows):
            old = [0.0 if has_parts(r) else r.peak_memory_bytes * scale for r in rows]
            ax.bar(xs, old, 0.7, color="0.75", hatch="//", edgecolor="0.4", label=SCHEMA1_LABEL)
        for x, r in zip(xs, rows, strict=True):
            total = r.peak_memory_bytes * scale
            ax.annotate(
                fixed(total, 3),
                (x, total),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                fontsize=7,
                rotation=90 if len(rows) > 6 else 0,
            )
        expected = [
            (x, r.peak_memory_expected_bytes * scale)
            for x, r in zip(xs, rows, strict=True)
            if r.peak_memory_expected_bytes
        ]
        if expected:
            ax.plot(
                [x for x, _ in expected],
                [y for _, y in expected],
                linestyle="none",
                marker="_",
                markersize=22,
                markeredgewidth=2,
                color="black",
                label="robust AdapterDrop: mean total over its draws",
            )
        ax.set_xticks(xs, [r.variant for r in rows], rotation=25, ha="right", fontsize=7)
        ax.margins(y=0.12)
        ax.set_ylabel(f"memory per step ({unit})")
        first = rows[0]
        where = f" [{series}]" if series else ""
        ax.set_title(
            f"{comparison} ({phase}){where}: {model}, batch {first.batch_size}, seq {first.seq_len}\n"
            f"transient peak: {KINDS.get(kind, kind)}",
            fontsize=9,
        )
        legend_outside(ax)
    note = (
        "Schema-2 records: parameters (each storage once; a shared frozen encoder once), optimizer state "
        "(AdamW's moments and step counters) and gradients are counted from the tensors; activations and "
        "temporaries are the rest of the step's transient peak, read as each panel's title says. The four "
        "add up to the total printed on each bar. Robust AdapterDrop: the largest total over its draws (a "
        "dash marks the mean)."
    )
    add_caption(fig, records, note)
    return fig
