"""Reports from stored records: PNG + SVG plots and a markdown summary. Measures nothing.

``build_report(results_paths, out_dir)`` loads one or more results files (several machines or commits
merge into one report, each environment a series of its own), draws every standard comparison whose data
the records hold, names the ones they do not hold, and writes ``out_dir/report.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from adapterdrop.report.comparisons import COMPARISONS
from adapterdrop.report.markdown import render
from adapterdrop.report.plots import PLOTS, STEMS
from adapterdrop.report.records import load_all


@dataclass(frozen=True)
class ReportSummary:
    """What ``build_report`` did: files written (plots, then report.md) and which comparisons it found."""

    files: list[Path]
    comparisons_found: list[str]
    comparisons_missing: list[str]

    @property
    def report(self) -> Path:
        """The markdown report (the last file written)."""
        return self.files[-1]


def build_report(results_paths: Sequence[Path], out_dir: Path) -> ReportSummary:
    """Plots and ``report.md`` in ``out_dir`` from the records of ``results_paths``.

    Raises :class:`adapterdrop.results.ResultsFileError` (a ValueError) for a missing or corrupt file.
    """
    paths = [Path(p) for p in results_paths]
    out_dir = Path(out_dir)
    records = load_all(paths)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures: dict[str, list[Path]] = {}
    missing = []
    for comparison in COMPARISONS:
        selected = comparison.select(records)
        if selected:
            figures[comparison.name] = PLOTS[comparison.name](selected, out_dir)
        else:  # a plot left from an earlier report into this folder would no longer be true
            missing.append(comparison)
            for suffix in ("png", "svg"):
                (out_dir / f"{STEMS[comparison.name]}.{suffix}").unlink(missing_ok=True)
    report = out_dir / "report.md"
    report.write_text(render(records, paths, figures, missing, out_dir), encoding="utf-8")
    return ReportSummary(
        files=[path for files in figures.values() for path in files] + [report],
        comparisons_found=list(figures),
        comparisons_missing=[c.name for c in missing],
    )


__all__ = ["ReportSummary", "build_report"]
