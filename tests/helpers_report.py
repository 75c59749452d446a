"""Recompute the ratios a report.md prints from the numbers printed beside them, as a sceptical reader would.

Every printed number is a rounded value: ``12.34`` stands for anything in [12.335, 12.345]. A ratio is
consistent when the interval it stands for overlaps the interval of ratios its printed operands allow
(interval arithmetic), so the check never fails on rounding and always fails on a ratio that was taken
from other numbers, like a speedup whose baseline median is not the one printed beside it, or a printed
baseline median that is not the median in the baseline's own row of the same scenario.

Two table layouts are read: the current one (a ``baseline median (ms)`` column beside every speedup, GFLOPs,
ideal, efficiency and samples/s) and the one before it (the baseline's median in the baseline's own row of
the same scenario), so that whatever report is committed can be checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
#: a quoted ratio in the paper section: ``1.234× [1.2, 1.3] (`a` 12.34 ms / `b` 10.00 ms; ...)``
_QUOTE = re.compile(
    r"(?P<ratio>\d+\.\d+)× (?:\[[^\]]*\]|\(no interval[^)]*\)) "
    r"\(`(?P<ref>[^`]+)` (?P<num>[\d.]+) ms / `(?P<sub>[^`]+)` (?P<den>[\d.]+) ms;"
)


@dataclass(frozen=True)
class Printed:
    """A printed number and the interval of values that print as it."""

    low: float
    high: float

    @classmethod
    def parse(cls, text: str) -> Printed | None:
        found = _NUMBER.search(text.replace("*", ""))
        if found is None:
            return None
        try:
            value = Decimal(found.group())
        except InvalidOperation:
            return None
        half = Decimal(5) * Decimal(10) ** (value.as_tuple().exponent - 1)
        return cls(float(value - half), float(value + half))

    def __truediv__(self, other: Printed) -> Printed:
        return Printed(self.low / other.high, self.high / other.low)

    def __mul__(self, factor: float) -> Printed:
        return Printed(self.low * factor, self.high * factor)

    def overlaps(self, other: Printed) -> bool:
        return self.low <= other.high * (1 + 1e-12) and other.low <= self.high * (1 + 1e-12)


@dataclass(frozen=True)
class Table:
    heading: str
    header: list[str]
    rows: list[dict[str, str]]


def _cells(line: str) -> list[str]:
    parts = re.split(r"(?<!\\)\|", line.strip())[1:-1]
    return [p.strip().replace("\\|", "|") for p in parts]


def tables(markdown: str) -> list[Table]:
    """Every markdown table with the heading above it; cells keyed by the header's names."""
    found = []
    heading = ""
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        if line.startswith("|") and index + 1 < len(lines) and lines[index + 1].startswith("|---"):
            header = _cells(line)
            rows = []
            index += 2
            while index < len(lines) and lines[index].startswith("|"):
                rows.append(dict(zip(header, _cells(lines[index]), strict=False)))
                index += 1
            found.append(Table(heading, header, rows))
            continue
        index += 1
    return found


def _name(cell: str) -> str:
    return cell.strip("`* ")


def _speedup_column(table: Table) -> str | None:
    for name in ("speedup [95% CI]", "speedup"):
        if name in table.header:
            return name
    return None


def _scenario(row: dict[str, str]) -> tuple[str, ...]:
    return tuple(row.get(name, "") for name in ("model", "phase", "batch", "seq"))


def _baseline_row(table: Table, row: dict[str, str]) -> dict[str, str] | None:
    """The baseline's own row in the same scenario: the row marked ``baseline`` (current layout), else
    the title's baseline the variant's name extends, or the only one (layout before)."""
    same = [r for r in table.rows if _scenario(r) == _scenario(row)]
    column = _speedup_column(table)
    marked = [r for r in same if r.get(column, "").strip("* ") == "baseline"]
    if marked:
        variant = _name(row["variant"])
        if len(marked) == 1:
            return marked[0]
        return next((r for r in marked if variant.startswith(_name(r["variant"]) + ",")), None)
    candidates = re.findall(r"`([^`]+)`", table.heading.partition("(baseline")[2])
    present = [r for r in same if _name(r["variant"]) in candidates]
    if len(present) == 1:
        return present[0]
    variant = _name(row["variant"])
    return next(
        (
            r
            for r in present
            if variant.startswith(_name(r["variant"]) + ",") or _name(r["variant"]) == variant
        ),
        None,
    )


def _check_row(table: Table, row: dict[str, str]) -> list[str]:
    """What in one table row does not follow from the numbers printed beside it."""
    column = _speedup_column(table)
    where = f"{table.heading}: {_name(row['variant'])} {_scenario(row)}"
    speedup_text = row.get(column, "")
    if speedup_text.strip("* ") in ("baseline", "–", ""):
        return []
    speedup = Printed.parse(speedup_text)
    median = Printed.parse(row["median (ms)"])
    base_row = _baseline_row(table, row)
    if "baseline median (ms)" in row:
        base_median = Printed.parse(row["baseline median (ms)"])
    else:
        base_median = Printed.parse(base_row["median (ms)"]) if base_row else None
    if speedup is None or median is None or base_median is None:
        return [f"{where}: speedup {speedup_text!r} has no medians beside it"]
    problems = []
    if "baseline median (ms)" in row and base_row is not None:
        own = Printed.parse(base_row["median (ms)"])
        if own is not None and not own.overlaps(base_median):
            problems.append(
                f"{where}: baseline median {row['baseline median (ms)']} is not its baseline row's "
                f"{base_row['median (ms)']}"
            )
    if not (base_median / median).overlaps(speedup):
        problems.append(
            f"{where}: speedup {speedup_text} but medians give "
            f"{row.get('baseline median (ms)') or base_row['median (ms)']} / {row['median (ms)']}"
        )
    if "GFLOPs/step" in row and base_row is not None:
        ideal = Printed.parse(row["ideal"])
        flops, base_flops = Printed.parse(row["GFLOPs/step"]), Printed.parse(base_row["GFLOPs/step"])
        if ideal and flops and base_flops and not (base_flops / flops).overlaps(ideal):
            problems.append(
                f"{where}: ideal {row['ideal']} but GFLOPs give "
                f"{base_row['GFLOPs/step']} / {row['GFLOPs/step']}"
            )
        efficiency = Printed.parse(row["efficiency"])
        if ideal and efficiency and not (speedup / ideal).overlaps(efficiency):
            problems.append(f"{where}: efficiency {row['efficiency']} is not speedup / ideal")
    if "samples/s" in row and row.get("batch", "").isdigit():
        throughput = Printed.parse(row["samples/s"])
        if throughput and not (Printed(1000.0, 1000.0) / median * int(row["batch"])).overlaps(throughput):
            problems.append(f"{where}: samples/s {row['samples/s']} is not batch / median")
    return problems


def _check_quotes(markdown: str) -> tuple[list[str], int]:
    """Quoted ratios in prose (the paper section): each must follow from the two medians quoted with it."""
    problems = []
    for match in _QUOTE.finditer(markdown):
        quoted = Printed.parse(match["ratio"])
        computed = Printed.parse(match["num"]) / Printed.parse(match["den"])
        if not computed.overlaps(quoted):
            problems.append(f"quote {match.group()!r}: the medians give another ratio")
    return problems, len(_QUOTE.findall(markdown))


def ratio_problems(markdown: str) -> tuple[list[str], int]:
    """Every printed ratio that does not follow from the numbers beside it, and how many were checked."""
    problems: list[str] = []
    checked = 0
    for table in tables(markdown):
        column = _speedup_column(table)
        if column is None or "median (ms)" not in table.header:
            continue
        for row in table.rows:
            if row.get(column, "").strip("* ") not in ("baseline", "–", ""):
                checked += 1
            problems += _check_row(table, row)
    quote_problems, quotes = _check_quotes(markdown)
    return problems + quote_problems, checked + quotes
