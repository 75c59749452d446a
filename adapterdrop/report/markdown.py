"""The markdown report: environments, the paper's figures beside the measured ones, plots, summary tables.

Every number in it comes from the records, except the paper's figures, which are quoted in their own
column with their source.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from adapterdrop.report.comparisons import COMPARISONS, Comparison
from adapterdrop.report.paper import FIGURES, PAPER
from adapterdrop.report.records import Record, env_of, group_by, variant_sort_key


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def _number(value: float | None, scale: float = 1.0, digits: int = 3) -> str:
    return "–" if value is None else f"{value * scale:.{digits}g}"


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _spread(record: Record) -> str:
    iqr, median = record.get("time_iqr_s"), record.get("time_median_s")
    if iqr is None or not median:
        return "–"
    return f"{iqr * 1e3:.3g} ({iqr / median:.0%})"


def _sources(paths: Sequence[Path], records: list[Record]) -> list[str]:
    lines = [f"Built from {len(records)} records in:", ""]
    lines += [f"- `{path}`" for path in paths]
    lines += [
        "",
        "This report measures nothing itself: every number below comes from those records, except "
        f"the figures quoted from the paper ({PAPER}), which are labelled as the paper's.",
        "",
    ]
    return lines


def _environment(records: list[Record]) -> list[str]:
    rows = []
    for (series,), members in group_by(records, "series").items():
        env = env_of(members[0])
        commit = str(env.get("git_commit"))[:12] + (" (uncommitted changes)" if env.get("git_dirty") else "")
        dates = sorted(r["created_at"] for r in members)
        rows.append(
            [
                series or "(all records)",
                env.get("device"),
                env.get("device_name"),
                env.get("cpu"),
                env.get("threads"),
                f"{env.get('dtype')} {env.get('precision')}",
                env.get("python"),
                env.get("torch"),
                env.get("transformers"),
                commit,
                env.get("hostname"),
                len(members),
                f"{dates[0]} – {dates[-1]}",
            ]
        )
    header = [
        "series",
        "device",
        "device name",
        "CPU",
        "threads",
        "dtype",
        "python",
        "torch",
        "transformers",
        "commit",
        "host",
        "records",
        "measured",
    ]
    return ["## Environment", "", *_table(header, rows), ""]


def _paper(records: list[Record]) -> list[str]:
    rows = []
    for figure in FIGURES:
        measured = figure.measured(records)
        rows.append(
            [
                figure.result,
                figure.paper,
                figure.source,
                measured if measured is not None else f"not measured (needs {figure.needs})",
            ]
        )
    lines = [
        "## The paper's figures and the measured ones",
        "",
        f"Paper: {PAPER} (BERT-base / RoBERTa-base geometry on GPUs). Measured: the speedup of the second "
        'variant over the first, both measured interleaved in one group; "X% faster" means X% more steps '
        "per second. Model size, device and input size differ from the paper's, so compare the shape, "
        "not the digits.",
        "",
    ]
    return lines + _table(["result", "paper's figure", "paper's source", "measured here"], rows) + [""]


def _plots(figures: dict[str, list[Path]], out_dir: Path) -> list[str]:
    lines = ["## Plots", ""]
    for comparison in COMPARISONS:
        files = figures.get(comparison.name)
        if not files:
            continue
        png, svg = (f.relative_to(out_dir).as_posix() for f in files)
        lines += [f"### {comparison.title}", "", f"![{comparison.title}]({png})", "", f"[SVG]({svg})", ""]
    return lines


def _missing(missing: list[Comparison]) -> list[str]:
    if not missing:
        return []
    lines = [
        "## Missing comparisons",
        "",
        "These plots are not drawn because the records do not hold their data:",
        "",
    ]
    lines += [f"- **{c.name}** ({c.title}): needs {c.needs}." for c in missing]
    return lines + [""]


def _summary_tables(records: list[Record]) -> list[str]:
    lines = [
        "## Summary per comparison",
        "",
        "Median and IQR of the time per step (one forward for `infer`; forward + backward + optimizer step "
        "for `train`); speedup = baseline median / variant median in the same interleaved group; ideal = "
        "baseline FLOPs / variant FLOPs; efficiency = speedup / ideal.",
        "",
    ]
    header = [
        "model",
        "phase",
        "batch",
        "seq",
        "variant",
        "median (ms)",
        "IQR (ms, % of median)",
        "speedup",
        "ideal",
        "efficiency",
        "peak memory (MiB)",
        "samples/s",
    ]
    measured = [r for r in records if r["status"] == "ok"]
    for (comparison, series), members in group_by(measured, "comparison", "series").items():
        baselines = ", ".join(sorted({f"`{r['baseline']}`" for r in members}))
        members = sorted(
            members,
            key=lambda r: (
                r["model"],
                r["phase"],
                r["seq_len"],
                r["batch_size"],
                variant_sort_key(r["baseline"]),
                variant_sort_key(r["variant"]),
            ),
        )
        rows = [
            [
                r["model"],
                r["phase"],
                r["batch_size"],
                r["seq_len"],
                f"`{r['variant']}`",
                _number(r["time_median_s"], 1e3),
                _spread(r),
                _ratio(r["speedup"]),
                _ratio(r["ideal_speedup"]),
                _number(r["efficiency"], digits=2),
                _number(r["peak_memory_bytes"], 2**-20),
                _number(r["throughput_samples_s"]),
            ]
            for r in members
        ]
        title = f"{comparison} [{series}]" if series else comparison
        lines += [f"### {title} (baseline {baselines})", "", *_table(header, rows), ""]
    return lines


def _not_measured(records: list[Record]) -> list[str]:
    failed = [r for r in records if r["status"] != "ok"]
    if not failed:
        return []
    failed.sort(
        key=lambda r: (
            r["status"],
            r["comparison"],
            r["series"],
            r["phase"],
            r["batch_size"],
            variant_sort_key(r["variant"]),
        )
    )
    rows = [
        [
            r["status"],
            r["comparison"],
            r["series"] or "–",
            r["model"],
            r["phase"],
            r["batch_size"],
            r["seq_len"],
            f"`{r['variant']}`",
            r.get("error") or "",
        ]
        for r in failed
    ]
    header = ["status", "comparison", "series", "model", "phase", "batch", "seq", "variant", "reason"]
    return ["## Records without a measurement (not plotted)", "", *_table(header, rows), ""]


def render(
    records: list[Record],
    paths: Sequence[Path],
    figures: dict[str, list[Path]],
    missing: list[Comparison],
    out_dir: Path,
) -> str:
    """The whole report as markdown; image links are relative to ``out_dir``."""
    lines = ["# AdapterDrop efficiency report", "", *_sources(paths, records)]
    if records:
        lines += _environment(records) + _paper(records)
    lines += _plots(figures, out_dir) + _missing(missing)
    lines += _summary_tables(records) + _not_measured(records)
    return "\n".join(lines).rstrip() + "\n"
