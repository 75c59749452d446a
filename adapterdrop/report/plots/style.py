"""How the plots tell things apart, and how they draw a measured ratio.

Colour tells variants (or task counts, or batch sizes) apart; line style and marker shape tell series
(machines, devices, dtypes, commits) apart. A measured point is a marker with its 95% interval as an
error bar; a filled marker is a result, a hollow one is noisy or was measured on a loaded machine.
Curves of one panel are *dodged* (shifted a little along x) so that equal values do not hide each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from adapterdrop.report.figure import legend_outside
from adapterdrop.report.records import ReportRecord

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
#: the colour of a paper's published figure in every plot
PAPER_COLOUR = "0.35"


def colour(index: int) -> str:
    return _COLOURS[index % len(_COLOURS)]


def series_styles(records: Sequence[ReportRecord]) -> dict[str, dict[str, Any]]:
    """series -> line style and marker."""
    series = sorted({r.series for r in records})
    return {
        s: {"linestyle": _LINESTYLES[i % len(_LINESTYLES)], "marker": _MARKERS[i % len(_MARKERS)]}
        for i, s in enumerate(series)
    }


def dodge(index: int, count: int, step: float) -> float:
    """The offset of curve ``index`` of ``count``: centred on 0, ``step`` apart."""
    return (index - (count - 1) / 2) * step


def draw_points(
    ax: Axes,
    xs: Sequence[float],
    ys: Sequence[float],
    intervals: Sequence[Sequence[float] | None],
    results: Sequence[bool],
    colour: str,
    style: dict[str, Any],
    *,
    line: bool = True,
) -> None:
    """One curve: a line through the points (if ``line``), 95% interval bars where there is an interval,
    filled markers for results and hollow markers for the rest."""
    if line:
        ax.plot(xs, ys, color=colour, linestyle=style["linestyle"], linewidth=1.4, zorder=2)
    with_ci = [i for i, ci in enumerate(intervals) if ci]
    if with_ci:
        low = [ys[i] - intervals[i][0] for i in with_ci]
        high = [intervals[i][1] - ys[i] for i in with_ci]
        ax.errorbar(
            [xs[i] for i in with_ci],
            [ys[i] for i in with_ci],
            yerr=np.clip([low, high], 0, None),
            fmt="none",
            ecolor=colour,
            elinewidth=1,
            capsize=2.5,
            zorder=2,
        )
    for filled in (True, False):
        picked = [i for i, result in enumerate(results) if result == filled]
        if picked:
            ax.plot(
                [xs[i] for i in picked],
                [ys[i] for i in picked],
                linestyle="none",
                marker=style["marker"],
                markersize=6,
                color=colour,
                markerfacecolor=colour if filled else "white",
                markeredgewidth=1.2,
                zorder=3,
            )


def legend(
    ax: Axes,
    colours: dict[str, str],
    styles: dict[str, dict[str, Any]],
    *,
    lines: bool = True,
    extra: list[Artist] | None = None,
) -> None:
    """Legend: one entry per colour, the panel's labelled reference artists, ``extra`` entries, one entry
    per series (line style and marker) when there are several, and what a hollow marker means."""
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
    handles.append(
        Line2D(
            [],
            [],
            color="0.35",
            marker="o",
            markerfacecolor="white",
            linestyle="none",
            label="noisy or loaded",
        )
    )
    legend_outside(ax, handles)


def is_result(record: ReportRecord) -> bool:
    return not record.caveats
