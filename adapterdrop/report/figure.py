"""Figure plumbing shared by the plots: panels, the environment caption, PNG + SVG output.

Figures are built with ``matplotlib.figure.Figure`` directly, not through ``pyplot``: that renders
headless with the Agg (PNG) and SVG canvases, keeps no global figure registry, and leaves the backend of
whoever imported the package alone.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable
from pathlib import Path

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from adapterdrop.report.records import ReportRecord, describe_env, group_by

PNG_DPI = 120
PANEL_WIDTH_IN = 5.0
_PANEL_HEIGHT_IN = 3.6
_LEGEND_WIDTH_CHARS = 42
#: the caption's first line, under every figure that draws measured ratios
MARKERS_NOTE = (
    "Filled markers: results; hollow markers (hatched bars): noisy or measured on a loaded machine, "
    "not stated as results. Bars on a point: the 95% interval of the speedup (none for schema-1 records)."
)


def panels(count: int, *, max_cols: int = 3, width: float = PANEL_WIDTH_IN) -> tuple[Figure, list[Axes]]:
    """A figure with ``count`` panels of ``width`` inches, laid out in rows of at most ``max_cols``."""
    cols = min(count, max_cols)
    rows = math.ceil(count / cols)
    fig = Figure(figsize=(width * cols + 1.5 * cols, _PANEL_HEIGHT_IN * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for extra in axes[count:]:
        extra.set_visible(False)
    for ax in axes[:count]:
        ax.grid(True, alpha=0.3)
    return fig, axes[:count]


def caption_text(records: Iterable[ReportRecord], note: str = "") -> str:
    """The machine and versions of every series in ``records`` (one line each), then an optional note."""
    lines = []
    for (series,), members in group_by(records, "series").items():
        prefix = f"[{series}] " if series else ""
        lines.append(f"{prefix}{describe_env(members[0])}")
    if note:
        lines.append(note)
    return "\n".join(lines)


def add_caption(fig: Figure, records: Iterable[ReportRecord], note: str = "") -> None:
    """Writes the caption under the panels (saved figures grow to hold it)."""
    width_chars = int(fig.get_figwidth() * 16)
    wrapped = "\n".join(
        textwrap.fill(line, width_chars, subsequent_indent="    ")
        for line in caption_text(records, note).splitlines()
    )
    fig.text(0.005, 0.0, wrapped, ha="left", va="top", fontsize=8, color="0.25")


def legend_outside(ax: Axes, handles: list[Artist] | None = None) -> None:
    """A legend to the right of the panel, so it never hides data; long labels wrap."""
    if handles is None:
        handles, _ = ax.get_legend_handles_labels()
    labels = [textwrap.fill(h.get_label(), _LEGEND_WIDTH_CHARS, subsequent_indent="  ") for h in handles]
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)


def save(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    """Saves ``fig`` as ``stem.png`` and ``stem.svg`` under ``out_dir``; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in ("png", "svg"):
        path = out_dir / f"{stem}.{suffix}"
        fig.savefig(path, dpi=PNG_DPI, bbox_inches="tight", pad_inches=0.15)
        written.append(path)
    return written


def log2_batch_axis(batch_sizes: Iterable[int]) -> bool:
    """True when batch sizes span a range wide enough for a log2 axis."""
    sizes = sorted(set(batch_sizes))
    return len(sizes) > 2 and sizes[-1] / sizes[0] >= 8


def batch_axis(ax: Axes, batch_sizes: Iterable[int]) -> None:
    """A batch-size x axis: log2 when the sizes span a wide range, ticks at the measured sizes."""
    sizes = sorted(set(batch_sizes))
    if log2_batch_axis(sizes):
        ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set_xlabel("batch size (sequences)")
