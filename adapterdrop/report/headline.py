"""The headline a finished ``adapterdrop run`` prints: the paper's figures beside the measured ones, and
where the report and plots are, so that the answer is on the terminal without opening a file.

The measured ratios are those of the report's paper section (:meth:`.paper.PaperFigure.findings`, same
records, same intervals); this module only lays them out as plain text. Each ratio is printed with its
95% interval and the two medians (ms) it is the ratio of, and with its verdict: ``result``, or ``noisy`` /
``loaded`` for a measurement that is not a result. A group of more than :data:`MAX_ROWS` ratios is
summarised by its lowest and highest result and a count of the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from adapterdrop.report import ReportSummary
from adapterdrop.report.data_parallel import is_data_parallel
from adapterdrop.report.format import interval, ms, times
from adapterdrop.report.paper import FIGURES, PAPER, PaperFigure, in_words
from adapterdrop.report.ratios import Ratio
from adapterdrop.report.records import ReportRecord, group_by

#: a group (one figure, series, model and pair of variants) with more ratios is summarised
MAX_ROWS = 4
_INDENT = "    "
#: what one printed group of ratios shares: the model, the reference variant and the subject variant
_PAIR = (lambda f: f.subject.model, lambda f: f.reference.variant, lambda f: f.subject.variant)


def verdict(found: Ratio) -> str:
    """``result``, else ``loaded`` when either record's machine was loaded, else ``noisy``."""
    if found.is_result:
        return "result"
    return "loaded" if found.reference.loaded or found.subject.loaded else "noisy"


def _cells(found: Ratio) -> list[str]:
    sub = found.subject
    return [
        f"{sub.phase} b{sub.batch_size} s{sub.seq_len}",
        f"{times(found.value)} {interval(found.interval, sub.schema)}",
        f"{ms(found.reference.time_median_s)} ms",
        f"/ {ms(sub.time_median_s)} ms",
        in_words(found.value),
        verdict(found),
    ]


def _shown(ratios: list[Ratio]) -> tuple[list[Ratio], str | None]:
    """The ratios to print (all, in scenario order; or, past :data:`MAX_ROWS`, the lowest and highest
    result) and a line counting the rest (None when all are shown)."""
    if len(ratios) <= MAX_ROWS:
        return sorted(ratios, key=_scenario_order), None
    results = sorted((f for f in ratios if f.is_result), key=lambda f: f.value)
    shown = results[:1] + results[-1:] if len(results) > 1 else results
    rest = [f for f in ratios if f not in shown]
    between = sum(f.is_result for f in rest)
    counts = {name: sum(verdict(f) == name for f in rest) for name in ("noisy", "loaded")}
    parts = [f"{between} results between the lowest and highest shown"] if between else []
    parts += [f"{count} {name}" for name, count in counts.items() if count]
    more = "more" if shown else "measured"
    return shown, f"{len(rest)} {more}: {', '.join(parts)} (report.md: Summary per comparison)"


def _scenario_order(found: Ratio) -> tuple[str, int, int]:
    sub = found.subject
    return (sub.phase, sub.seq_len, sub.batch_size)


@dataclass(frozen=True)
class _Group:
    """The ratios of one figure between two variants of one model and series, as printed."""

    heading: str
    rows: list[list[str]]
    rest: str | None


def _groups(figure: PaperFigure, records: list[ReportRecord]) -> list[_Group]:
    findings = figure.findings(records)
    if not findings:
        return [_Group(f"  not measured (needs {figure.needs.replace('`', '')})", [], None)]
    groups = []
    for finding in findings:
        series = f" [{finding.series}]" if finding.series else ""
        pairs = group_by(finding.ratios, *_PAIR)
        for (model, reference, subject), ratios in pairs.items():
            shown, rest = _shown(ratios)
            heading = f"  measured on {model}{series}: {reference} / {subject}"
            groups.append(_Group(heading, [_cells(f) for f in shown], rest))
    return groups


def paper_table(records: list[ReportRecord]) -> list[str]:
    """The paper's figures and the measured ones as plain-text lines (``records`` paired, as the report's)."""
    single = [r for r in records if not is_data_parallel(r)]  # the paper's figures are single processes
    sections = [(figure, _groups(figure, single)) for figure in FIGURES]
    rows = [row for _, groups in sections for group in groups for row in group.rows]
    if not rows:  # a preset of other comparisons (peft's methods, decoders): say so in two lines, not six
        return [
            f"The paper's figures and the measured ones ({PAPER}): none of its comparisons is in this run.",
            "Every ratio this run measured is in the report's summary tables, with its interval and verdict.",
        ]
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(5)]
    lines = [
        f"The paper's figures and the measured ones ({PAPER})",
        "speedup = reference median / subject median (both from one run) [95% interval]; a noisy or loaded",
        "measurement is not a result. Model, device and input sizes differ from the paper's: compare the",
        "shape, not the digits.",
    ]
    for figure, groups in sections:
        lines += ["", figure.result, f"  paper ({figure.source}): {figure.paper}"]
        for group in groups:
            lines.append(group.heading)
            for scenario, ratio, reference, subject, words, said in group.rows:
                lines.append(
                    f"{_INDENT}{scenario:<{widths[0]}}  {ratio:<{widths[1]}}  {reference:>{widths[2]}} "
                    f"{subject:<{widths[3]}}  {words:<{widths[4]}}  {said}"
                )
            if group.rest:
                lines.append(_INDENT + group.rest)
    return lines


def where(files: Sequence[Path]) -> list[str]:
    """Where the report and its plots are: ``files`` as :class:`ReportSummary` lists them (plots, then
    report.md)."""
    *plots, report = files
    lines = [f"Report: {report}"]
    pairs = group_by(plots, lambda p: p.with_suffix("").as_posix())
    if not pairs:
        return lines + ["Plots: none drawn (report.md: Missing comparisons)"]
    lines.append("Plots:")
    return lines + [f"  {'  '.join(str(p) for p in pair)}" for pair in pairs.values()]


def headline(summary: ReportSummary) -> str:
    """The paper-against-measured table of a built report, then where the report and plots are."""
    return "\n".join([*paper_table(summary.data.shown), "", *where(summary.files)])
