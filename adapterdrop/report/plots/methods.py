"""Methods side by side: every adapter method of a run against full fine-tuning, and AdapterDrop for each.

A *method* is a variant family, with ``adapterdrop:n=K`` counted as the bottleneck ``adapter`` with
``n=K`` (``peft``'s methods spell ``n`` in their own names: ``lora:n=6``); a merged LoRA is its own
method (``lora:merged``). The records are those of runs with baseline ``full`` that hold two methods or
more (robust AdapterDrop left out: it has no single ``n``). Per (series, model, sequence length, batch
size), four panels:

- **speed relative to full**: each method at ``n=0``, the training speedup over ``full`` and the inference
  speed relative to ``full`` (``full``'s median time / the method's), with their 95% intervals;
- **memory per training step** in parts (parameters, optimizer state, gradients, activations) and
- **trainable parameters** (log scale), for ``full`` and each method at ``n=0``;
- **AdapterDrop per method**: the speedup of ``n=K`` over the same method at ``n=0`` (one run, a paired
  interval), against K, one curve per method and phase; dotted, the FLOP ideal (FLOPs at ``n=0`` / FLOPs
  at ``n=K``).
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from adapterdrop.report.figure import MARKERS_NOTE, add_caption, legend_outside, panels
from adapterdrop.report.names import family, spelled_options
from adapterdrop.report.plots.memory import PARTS, has_parts
from adapterdrop.report.plots.style import colour, draw_points, is_result
from adapterdrop.report.ratios import ratio
from adapterdrop.report.records import ReportRecord, group_by

PHASE_COLOURS = {"train": "tab:blue", "infer": "tab:orange"}


def method(name: str) -> str | None:
    """The method of a canonical variant name (see the module docstring); None for robust AdapterDrop."""
    options = spelled_options(name)
    if options.get("robust"):
        return None
    kind = "adapter" if family(name) == "adapterdrop" else family(name)
    return f"{kind}:merged" if options.get("merged") else kind


def drop(name: str) -> int:
    """The number of lowest layers without the method (``n``; 0 when the name leaves it out)."""
    value = spelled_options(name).get("n", 0)
    return value if isinstance(value, int) else 0


def _same_method_at_zero(record: ReportRecord) -> bool:
    """The name is its method at ``n=0`` with no other option than ``merged``."""
    return drop(record.variant) == 0 and set(spelled_options(record.variant)) <= {"merged"}


def select(records: Sequence[ReportRecord]) -> list[ReportRecord]:
    """Measured records of the runs against ``full`` that hold two methods or more (baselines included)."""
    chosen: list[ReportRecord] = []
    for members in group_by([r for r in records if r.measured], "series", "run_id").values():
        if not all(r.baseline == "full" for r in members):
            continue
        methods = {method(r.variant) for r in members if not r.is_baseline} - {None}
        if len(methods) >= 2:
            chosen += [r for r in members if r.is_baseline or method(r.variant) is not None]
    return chosen


def _speed_panel(ax, members: list[ReportRecord], order: list[str]) -> None:
    slot = {m: i for i, m in enumerate(order)}
    for index, phase in enumerate(("train", "infer")):
        points = [
            r
            for r in members
            if r.phase == phase and not r.is_baseline and _same_method_at_zero(r) and r.speedup is not None
        ]
        points.sort(key=lambda r: slot[method(r.variant)])
        if points:
            draw_points(
                ax,
                [slot[method(r.variant)] + (index - 0.5) * 0.3 for r in points],
                [r.speedup for r in points],
                [tuple(r.speedup_ci) if r.speedup_ci else None for r in points],
                [is_result(r) for r in points],
                PHASE_COLOURS[phase],
                {"marker": "o", "linestyle": "-"},
                line=False,
            )
    ax.axhline(1.0, color="0.3", linestyle="--", linewidth=1)
    ax.set_xticks(range(len(order)), order, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("speed relative to full (x)")
    handles = [
        Line2D([], [], color=c, marker="o", linestyle="none", label=p) for p, c in PHASE_COLOURS.items()
    ]
    legend_outside(ax, handles)


def _at_zero_train(members: list[ReportRecord]) -> list[ReportRecord]:
    rows = [r for r in members if r.phase == "train" and (r.is_baseline or _same_method_at_zero(r))]
    return sorted(rows, key=lambda r: (not r.is_baseline, method(r.variant) or ""))


def _memory_panel(ax, members: list[ReportRecord]) -> None:
    rows = [r for r in _at_zero_train(members) if has_parts(r)]
    xs = list(range(len(rows)))
    bottoms = [0.0] * len(rows)
    for name, (label, tone) in PARTS.items():
        heights = [getattr(r, name) / 2**20 for r in rows]
        ax.bar(xs, heights, 0.7, bottom=bottoms, color=tone, label=label)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    ax.set_xticks(xs, [r.variant for r in rows], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("memory per training step (MiB)")
    legend_outside(ax)


def _params_panel(ax, members: list[ReportRecord]) -> None:
    rows = [r for r in _at_zero_train(members) if r.params_trainable]
    xs = list(range(len(rows)))
    ax.bar(xs, [r.params_trainable for r in rows], 0.7, color="tab:purple")
    ax.set_yscale("log")
    ax.set_xticks(xs, [r.variant for r in rows], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("trainable parameters")


def curves(
    members: list[ReportRecord],
) -> dict[tuple[str, str], list[tuple[int, float, tuple | None, bool, float]]]:
    """Per (method, phase) with ``n=0`` and at least one ``n=K`` in one run: ``(K, speedup over n=0, its
    interval, is a result, FLOP ideal)`` per K, K ascending (K = 0 gives 1)."""
    found = {}
    for (_run, phase), run in group_by(members, "run_id", "phase").items():
        by_method = group_by([r for r in run if not r.is_baseline and method(r.variant)], "variant")
        per_method: dict[str, dict[int, ReportRecord]] = {}
        for (variant,), (record, *_) in by_method.items():
            if set(spelled_options(variant)) <= {"n"} or family(variant) == "adapterdrop":
                per_method.setdefault(method(variant), {})[drop(variant)] = record
        for name, by_n in per_method.items():
            if 0 not in by_n or len(by_n) < 2:
                continue
            zero = by_n[0]
            points = []
            for k in sorted(by_n):
                r = ratio(zero, by_n[k])
                ideal = (
                    zero.flops_step / by_n[k].flops_step if zero.flops_step and by_n[k].flops_step else None
                )
                points.append((k, r.value, r.interval, r.is_result, ideal))
            found[(name, phase)] = points
    return found


def _curve_panel(ax, members: list[ReportRecord]) -> bool:
    drawn = curves(members)
    for index, ((name, phase), points) in enumerate(sorted(drawn.items())):
        tone = colour(index)
        style = {"marker": "o" if phase == "train" else "s", "linestyle": "-" if phase == "train" else "-."}
        draw_points(
            ax,
            [p[0] for p in points],
            [p[1] for p in points],
            [p[2] for p in points],
            [p[3] for p in points],
            tone,
            style,
        )
        ideal = [(p[0], p[4]) for p in points if p[4] is not None]
        ax.plot([k for k, _ in ideal], [v for _, v in ideal], color=tone, linestyle=":", linewidth=1)
        ax.plot(
            [],
            [],
            color=tone,
            marker=style["marker"],
            linestyle=style["linestyle"],
            label=f"{name} ({phase})",
        )
    ax.plot([], [], color="0.3", linestyle=":", label="FLOP ideal (same colour)")
    ax.set_xlabel("n: lowest layers without the method")
    ax.set_ylabel("speedup over the same method at n=0")
    legend_outside(ax)
    return bool(drawn)


def draw_methods(records: list[ReportRecord]) -> Figure:
    by_panel = group_by(records, "series", "model", "seq_len", "batch_size")
    fig, axes = panels(4 * len(by_panel), max_cols=4, width=4.0)
    for index, ((series, model, seq_len, batch), members) in enumerate(by_panel.items()):
        speed, memory, params, curve = axes[4 * index : 4 * index + 4]
        order = sorted({method(r.variant) for r in members if not r.is_baseline and _same_method_at_zero(r)})
        _speed_panel(speed, members, order)
        _memory_panel(memory, members)
        _params_panel(params, members)
        if not _curve_panel(curve, members):
            curve.text(
                0.5,
                0.5,
                "no method measured at n=0 and n=K in one run",
                ha="center",
                transform=curve.transAxes,
            )
        where = f" [{series}]" if series else ""
        for ax, what in zip(
            axes[4 * index : 4 * index + 4], ("speed", "memory", "trainable", "AdapterDrop"), strict=True
        ):
            ax.set_title(f"{what}{where}: {model}, batch {batch}, seq {seq_len}", fontsize=9)
    note = (
        f"{MARKERS_NOTE} Speed relative to full: full's median step time / the method's, training (blue) "
        "and inference (orange), each method at n=0. AdapterDrop: the speedup of n=K over the same method "
        "at n=0 in one run (paired interval); dotted, the FLOP ideal."
    )
    add_caption(fig, records, note)
    return fig
