"""What a report is made of, before anything is drawn: the records it shows and the ones it does not.

:func:`collect` loads the results files (one run per group and series, :mod:`.records`), pairs every ratio
with the baseline of its own run (:mod:`.ratios`), leaves out noisy or loaded records when asked, and lets
every comparison (:mod:`.comparisons`) select its records. Drawing and writing happen in
:func:`adapterdrop.report.build_report`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from adapterdrop.errors import AdapterDropError
from adapterdrop.report.comparisons import COMPARISONS, Comparison
from adapterdrop.report.ratios import Unpaired, pair_runs
from adapterdrop.report.records import Loaded, ReportRecord, load_runs


class NoRecordsError(AdapterDropError):
    """The results files hold no record: there is nothing to report."""


@dataclass(frozen=True)
class ReportData:
    """The records of a report: read (``loaded``), shown, left out, and each comparison's selection."""

    paths: list[Path]
    loaded: Loaded
    unpaired: list[Unpaired]
    shown: list[ReportRecord]
    left_out: list[ReportRecord]
    selected: dict[str, list[ReportRecord]]

    @property
    def missing(self) -> list[Comparison]:
        """The comparisons whose records are absent, in registry order."""
        return [c for c in COMPARISONS if c.name not in self.selected]


def collect(results_paths: Sequence[Path], *, exclude_noisy: bool = False) -> ReportData:
    """The records of ``results_paths`` as a report shows them.

    ``exclude_noisy`` leaves out every record that is noisy or was measured on a loaded machine. Raises
    :class:`adapterdrop.results.ResultsFileError` for a missing or corrupt file and :class:`NoRecordsError`
    when the files hold no record.
    """
    paths = [Path(p) for p in results_paths]
    loaded = load_runs(paths)
    if not loaded.records:
        raise NoRecordsError(f"no records in {', '.join(str(p) for p in paths)}: nothing to report")
    unpaired = pair_runs(loaded.records)
    left_out = [r for r in loaded.records if exclude_noisy and r.caveats]
    shown = [r for r in loaded.records if not (exclude_noisy and r.caveats)]
    selected = {c.name: picked for c in COMPARISONS if (picked := c.select(shown))}
    return ReportData(paths, loaded, unpaired, shown, left_out, selected)
