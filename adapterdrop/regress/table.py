"""The gate's table as text (terminal), markdown (a CI job summary) and JSON. No torch here.

Columns: scenario, check, baseline, now, change, interval, verdict. A speedup is printed with three
decimals and its 95% interval; a step time (``--against``) in milliseconds with the range [min, max] of
its per-process numbers; a counted figure (FLOPs: 2 per multiply-add; bytes; parameters) whole.
``change`` = now / baseline - 1 of the unrounded values (it can be recomputed from the columns beside it
to the printed precision).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from adapterdrop.regress.checks import SPEEDUP, TIME_CHECK, Row, exit_status, summary

HEADER = ("scenario", "check", "baseline", "now", "change", "interval", "verdict")


def _number(value: float | None, check: str) -> str:
    if value is None:
        return "-"
    if check == SPEEDUP:
        return f"{value:.3f}"
    if check == TIME_CHECK:
        return f"{value * 1e3:.2f} ms"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _interval(values: Sequence[float] | None, check: str) -> str:
    if not values:
        return "-"
    if check == TIME_CHECK:
        return f"[{values[0] * 1e3:.2f}, {values[1] * 1e3:.2f}] ms"
    return f"[{values[0]:.3f}, {values[1]:.3f}]"


def cells(row: Row) -> tuple[str, ...]:
    """The row's seven cells as printed."""
    baseline = _number(row.baseline, row.check)
    if row.baseline_ci:
        baseline += f" {_interval(row.baseline_ci, row.check)}"
    change = "-" if row.change is None else f"{row.change:+.1%}"
    verdict = row.verdict.upper() if row.fails else row.verdict
    return (
        row.scenario,
        row.check,
        baseline,
        _number(row.now, row.check),
        change,
        _interval(row.now_ci, row.check),
        verdict,
    )


def verdict_line(rows: Sequence[Row], min_effect: float | None) -> str:
    """One closing line: counts per verdict, the minimum effect, pass or fail."""
    counts = summary(rows)["verdicts"]
    detail = ", ".join(f"{count} {verdict}" for verdict, count in sorted(counts.items()))
    effect = "" if min_effect is None else f"; minimum effect {min_effect:.1%}"
    outcome = "FAIL" if exit_status(rows) else "pass"
    return f"regress: {outcome} ({detail}{effect})"


def format_text(rows: Sequence[Row], min_effect: float | None = None, notes: Sequence[str] = ()) -> str:
    """An aligned table, the details of failing rows, notes, and the verdict line."""
    table = [HEADER, *(cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [f"  {row.scenario} {row.check}: {row.detail}" for row in rows if row.detail]
    lines += [f"  {row.scenario} {row.check}: {note}" for row in rows for note in row.notes if row.fails]
    lines += [f"note: {note}" for note in notes]
    lines.append(verdict_line(rows, min_effect))
    return "\n".join(lines)


def format_markdown(
    rows: Sequence[Row], min_effect: float | None = None, notes: Sequence[str] = (), title: str = ""
) -> str:
    """A markdown table (for ``$GITHUB_STEP_SUMMARY``), failing rows' details, notes, the verdict line."""
    lines = [f"### {title}", ""] if title else []
    lines += ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        text = cells(row)
        verdict = f"**{text[-1]}**" if row.fails else text[-1]
        lines.append("| " + " | ".join((*(c.replace("|", "\\|") for c in text[:-1]), verdict)) + " |")
    details = [f"- `{row.scenario}` {row.check}: {row.detail}" for row in rows if row.detail]
    details += [f"- `{row.scenario}` {row.check}: {note}" for row in rows for note in row.notes if row.fails]
    lines += ["", *details] if details else []
    lines += ["", *(f"> {note}" for note in notes)] if notes else []
    lines += ["", f"`{verdict_line(rows, min_effect)}`"]
    return "\n".join(lines) + "\n"


def to_json(rows: Sequence[Row], extra: dict[str, Any] | None = None) -> str:
    """Every row with its raw numbers, the verdict counts and the exit status, plus ``extra``."""
    data = {**summary(rows), **(extra or {}), "rows": [asdict(row) for row in rows]}
    return json.dumps(data, indent=1, allow_nan=False) + "\n"
