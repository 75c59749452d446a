"""Reports from stored records: PNG + SVG plots and a markdown summary. Measures nothing; needs no torch.

``build_report(results_paths, out_dir)`` loads one or more results files (several machines or commits
merge into one report, each environment a series of its own), keeps one run per comparison group and
series, pairs every ratio with the baseline of its own run (:func:`.collect.collect`), draws every
standard comparison (:data:`.comparisons.COMPARISONS`) whose data the records hold, names the ones they
do not hold, and writes ``out_dir/report.md`` (:mod:`.markdown`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from adapterdrop.report.collect import NoRecordsError, ReportData, collect
from adapterdrop.report.comparisons import COMPARISONS
from adapterdrop.report.figure import save
from adapterdrop.report.markdown import render


@dataclass(frozen=True)
class ReportSummary:
    """What ``build_report`` did: files written (plots, then report.md), which comparisons it found, and
    the records behind it (``data``: read, shown, superseded, unpaired, left out)."""

    files: list[Path]
    data: ReportData

    @property
    def report(self) -> Path:
        """The markdown report (the last file written)."""
        return self.files[-1]

    @property
    def comparisons_found(self) -> list[str]:
        return list(self.data.selected)

    @property
    def comparisons_missing(self) -> list[str]:
        return [c.name for c in self.data.missing]

    def notes(self) -> list[str]:
        """One line for each kind of record read but not shown (for stderr; report.md lists them)."""
        loaded = self.data.loaded
        lines = [f"read {loaded.read} records, kept {len(loaded.records)} (one run per group and series)"]
        if loaded.duplicates:
            lines.append(f"{loaded.duplicates} records were read twice and count once")
        if loaded.superseded:
            lines.append(
                f"{loaded.superseded_count} records of {len(loaded.superseded)} run(s) were superseded by a "
                "later or more complete run of their group (report.md: Superseded runs)"
            )
        if self.data.unpaired:
            lines.append(
                f"{len(self.data.unpaired)} stored speedups do not follow from their own run and are not "
                "shown (report.md: Ratios not shown)"
            )
        if self.data.left_out:
            lines.append(
                f"{len(self.data.left_out)} noisy or loaded records were left out (report.md: Left out)"
            )
        return lines


def build_report(
    results_paths: Sequence[Path], out_dir: Path, *, exclude_noisy: bool = False
) -> ReportSummary:
    """Plots and ``report.md`` in ``out_dir`` from the records of ``results_paths``.

    ``exclude_noisy`` leaves out every record that is noisy or was measured on a loaded machine (they are
    listed, not drawn). Raises :class:`adapterdrop.results.ResultsFileError` for a missing or corrupt file
    and :class:`NoRecordsError` when the files hold no record; nothing is written then.
    """
    data = collect(results_paths, exclude_noisy=exclude_noisy)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures: dict[str, list[Path]] = {}
    for comparison in COMPARISONS:
        if comparison.name in data.selected:
            figures[comparison.name] = save(
                comparison.draw(data.selected[comparison.name]), out_dir, comparison.stem
            )
        else:  # a plot left from an earlier report into this folder would no longer be true
            for suffix in ("png", "svg"):
                (out_dir / f"{comparison.stem}.{suffix}").unlink(missing_ok=True)
    report = out_dir / "report.md"
    report.write_text(render(data, figures, out_dir), encoding="utf-8")
    return ReportSummary(files=[path for files in figures.values() for path in files] + [report], data=data)


__all__ = ["NoRecordsError", "ReportData", "ReportSummary", "build_report", "collect"]
