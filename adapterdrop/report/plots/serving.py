"""Many adapters served at once: throughput relative to the base model against the number of adapters N.

The records are those of the ``serve`` variant (``serve:impl=I,adapters=N,mix=M``) measured with their
baseline, the base model (``full``): each point is a record's speedup, the base model's median step time
over the implementation's (the same batch and the same tokens, so the ratio of their throughputs), with
its 95% interval. One panel per (phase, model, batch size, sequence length); one curve per implementation
(colour) and popularity mix (line style), against N. ``distinct`` has one N per batch size (N = B).
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from adapterdrop.report.figure import MARKERS_NOTE, add_caption, legend_outside, panels
from adapterdrop.report.names import family, spelled_options
from adapterdrop.report.plots.style import colour, draw_points, is_result
from adapterdrop.report.records import ReportRecord, group_by

#: the defaults of ``serve``'s options (declared in :mod:`adapterdrop.backends.serving`, which imports torch:
#: the report does not), taken where a canonical name leaves an option out; a test keeps the two equal
DEFAULTS = {"impl": "native", "adapters": 8, "mix": "uniform"}
_LINESTYLES = {"uniform": "-", "zipf": "--", "same": ":", "distinct": "-."}
_MARKERS = {"uniform": "o", "zipf": "s", "same": "^", "distinct": "D"}


def option(record: ReportRecord, name: str) -> object:
    """A ``serve`` option of the record's variant (its default when the canonical name leaves it out)."""
    return spelled_options(record.variant).get(name, DEFAULTS[name])


def select(records: Sequence[ReportRecord]) -> list[ReportRecord]:
    """Measured ``serve`` records that carry a speedup over their baseline."""
    return [r for r in records if r.measured and family(r.variant) == "serve" and r.speedup is not None]


def draw_serving(records: list[ReportRecord]) -> Figure:
    by_panel = group_by(records, "phase", "model", "batch_size", "seq_len")
    fig, axes = panels(len(by_panel), max_cols=2)
    impls = sorted({str(option(r, "impl")) for r in records})
    colours = {impl: colour(i) for i, impl in enumerate(impls)}
    for ax, ((phase, model, batch, seq_len), members) in zip(axes, by_panel.items(), strict=True):
        by_curve: dict[tuple[str, str], list[ReportRecord]] = {}
        for record in members:
            by_curve.setdefault((str(option(record, "impl")), str(option(record, "mix"))), []).append(record)
        for (impl, mix), points in sorted(by_curve.items()):
            points = sorted(points, key=lambda r: int(option(r, "adapters")))
            draw_points(
                ax,
                [int(option(r, "adapters")) for r in points],
                [r.speedup for r in points],
                [r.speedup_ci for r in points],
                [is_result(r) for r in points],
                colours[impl],
                {"linestyle": _LINESTYLES.get(mix, "-"), "marker": _MARKERS.get(mix, "o")},
            )
        ax.axhline(1.0, color="0.3", linestyle="--", linewidth=1)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("adapters served at once (N)")
        ax.set_ylabel("throughput relative to the base model")
        ax.set_title(f"{phase}: {model}, batch {batch}, {seq_len} tokens", fontsize=10)
        handles = [Line2D([], [], color=colours[i], label=i) for i in impls]
        handles += [
            Line2D([], [], color="0.3", linestyle=_LINESTYLES[m], marker=_MARKERS[m], label=f"mix {m}")
            for m in sorted({str(option(r, "mix")) for r in members})
        ]
        legend_outside(ax, handles)
    note = (
        f"{MARKERS_NOTE} Each point: the base model's median step time over the implementation's (same "
        "batch, same tokens), one interleaved run per panel."
    )
    add_caption(fig, records, note)
    return fig
