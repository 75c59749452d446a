"""The markdown report: sources, environments, the paper's figures beside the measured ones, plots, and
tables in which every ratio stands beside the numbers it is the ratio of, all from one run.

Every number in it comes from the records, except the paper's figures, which are quoted in their own
column with their source.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from adapterdrop.report import data_parallel, execution
from adapterdrop.report.collect import ReportData
from adapterdrop.report.comparisons import COMPARISONS, Comparison
from adapterdrop.report.format import MISSING, fixed, gflops, interval, mib, ms, percent, times
from adapterdrop.report.names import variant_sort_key
from adapterdrop.report.paper import FIGURES, PAPER
from adapterdrop.report.ratios import Unpaired
from adapterdrop.report.records import Loaded, ReportRecord, env_of, group_by


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def _scenario(record: ReportRecord) -> str:
    return f"{record.phase} b{record.batch_size} s{record.seq_len}"


def _sources(content: ReportData) -> list[str]:
    loaded = content.loaded
    lines = [f"Read {loaded.read} records from:", ""]
    lines += [f"- `{path}`" for path in content.paths]
    kept = len(loaded.records)
    lines += ["", f"Kept {kept} records: one run per comparison group and environment series."]
    if loaded.duplicates:
        lines.append(
            f"{loaded.duplicates} records were read twice (the same run and scenario) and count once."
        )
    if loaded.superseded:
        lines.append(
            f"{loaded.superseded_count} records of {len(loaded.superseded)} earlier or incomplete runs were "
            "superseded by another run of their group (see *Superseded runs*)."
        )
    if content.unpaired:
        lines.append(
            f"{len(content.unpaired)} stored speedups do not follow from their own run and are not shown "
            "(see *Ratios not shown*)."
        )
    if content.left_out:
        lines.append(
            f"{len(content.left_out)} noisy or loaded records are left out (`--exclude-noisy`; "
            "see *Left out*)."
        )
    lines += [
        "",
        "This report measures nothing itself: every number below comes from those records, except the "
        f"figures quoted from the paper ({PAPER}), which are labelled as the paper's.",
        "",
        "How to read it: a speedup is the baseline's median time / the variant's median time, both from one "
        "run (one process, interleaved rounds), printed beside both medians and with its 95% interval "
        "(paired bootstrap over the run's rounds; schema-1 records have none). A measurement marked "
        "*noisy* (its spread or interval is too wide) or *loaded* (other processes used the machine) is "
        "shown in italics and is not a result; the paper's figures are compared only with results.",
        "",
    ]
    return lines


def _environment(records: list[ReportRecord]) -> list[str]:
    rows = []
    for (series,), members in group_by(records, "series").items():
        env = env_of(members[0])
        commit = str(env.get("git_commit"))[:12] + (" (uncommitted changes)" if env.get("git_dirty") else "")
        dates = sorted(r.created_at for r in members)
        schemas = ", ".join(str(s) for s in sorted({r.schema for r in members}))
        rows.append(
            [
                series or "(all records)",
                env.get("device"),
                env.get("device_name"),
                env.get("cpu"),
                env.get("threads"),
                f"{env.get('dtype')} {env.get('precision')}",
                env.get("matmul_precision") or MISSING,
                env.get("python"),
                env.get("torch"),
                env.get("transformers"),
                commit,
                env.get("hostname"),
                len(members),
                schemas,
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
        "matmul precision",
        "python",
        "torch",
        "transformers",
        "commit",
        "host",
        "records",
        "schema",
        "measured",
    ]
    return ["## Environment", "", *_table(header, rows), ""]


def _paper(records: list[ReportRecord]) -> list[str]:
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
        "variant over the first, both from one run, with its 95% interval and the two medians (ms) it is the "
        'ratio of; "X% faster" means X% more steps per second. Only results are quoted: noisy or loaded '
        "measurements are counted, not stated. Model size, device and input size differ from the paper's, "
        "so compare the shape, not the digits.",
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


def _verdict(record: ReportRecord, notes: dict[str, int]) -> str:
    """``result``, or ``noisy [i, j]`` / ``loaded [i, j]`` naming the notes (one per distinct reason) that
    say why."""
    if not record.caveats:
        return "result"
    numbers = [notes.setdefault(reason, len(notes) + 1) for reason in record.caveats]
    return f"{'loaded' if record.loaded else 'noisy'} [{', '.join(str(n) for n in numbers)}]"


def _speedup_cell(record: ReportRecord) -> str:
    if record.is_baseline:
        return "baseline"
    if record.speedup is None:
        return MISSING
    value = times(record.speedup)
    value = value if not record.caveats else f"*{value}*"
    return f"{value} {interval(record.speedup_ci, record.schema)}"


def _time_row(record: ReportRecord, notes: dict[str, int]) -> list[Any]:
    reference = record.reference
    spread = percent(record.time_iqr_s / record.time_median_s) if record.time_iqr_s is not None else MISSING
    median = ms(record.time_median_s)
    return [
        record.model,
        record.phase,
        record.batch_size,
        record.seq_len,
        f"`{record.variant}`",
        median if not record.caveats else f"*{median}*",
        spread,
        ms(reference.time_median_s) if reference is not None else MISSING,
        _speedup_cell(record),
        gflops(record.flops_step),
        times(record.ideal_speedup) if not record.is_baseline else MISSING,
        fixed(record.efficiency, 3) if record.efficiency is not None and not record.is_baseline else MISSING,
        fixed(record.throughput_samples_s),
        _verdict(record, notes),
    ]


_TIME_HEADER = [
    "model",
    "phase",
    "batch",
    "seq",
    "variant",
    "median (ms)",
    "IQR (% of median)",
    "baseline median (ms)",
    "speedup [95% CI]",
    "GFLOPs/step",
    "ideal",
    "efficiency",
    "samples/s",
    "verdict",
]


def _row_order(record: ReportRecord) -> tuple[Any, ...]:
    return (
        record.model,
        record.phase,
        record.seq_len,
        record.batch_size,
        variant_sort_key(record.baseline),
        variant_sort_key(record.variant, record.baseline),
    )


def _summary_tables(records: list[ReportRecord]) -> list[str]:
    lines = [
        "## Summary per comparison",
        "",
        "Median and IQR of the time per step (one forward for `infer`; forward + backward + optimizer step "
        "for `train`). Speedup = baseline median / median, both from the same run, with its 95% interval. "
        "Ideal = baseline GFLOPs / GFLOPs per step (FLOPs = 2 per multiply-add); efficiency = speedup / "
        "ideal; samples/s = batch / median. Verdict: *result*, or why not (the notes under each table).",
        "",
    ]
    measured = [r for r in records if r.measured and not data_parallel.is_data_parallel(r)]
    for (comparison, series), members in group_by(measured, "comparison", "series").items():
        baselines = ", ".join(sorted({f"`{r.baseline}`" for r in members}))
        notes: dict[str, int] = {}
        rows = [_time_row(r, notes) for r in sorted(members, key=_row_order)]
        title = f"{comparison} [{series}]" if series else comparison
        lines += [f"### {title} (baseline {baselines})", "", *_table(_TIME_HEADER, rows), ""]
        lines += [f"[{number}] {reason}  " for reason, number in notes.items()]
        lines += [""] if notes else []
    return lines


def _memory_tables(records: list[ReportRecord]) -> list[str]:
    measured = [
        r
        for r in records
        if r.measured and r.peak_memory_bytes is not None and not data_parallel.is_data_parallel(r)
    ]
    if not measured:
        return []
    lines = [
        "## Memory per step",
        "",
        "MiB (2^20 bytes). Schema 2: parameters, optimizer state and gradients counted from the tensors, "
        "activations = the rest of the step's transient peak; they add up to the total. Robust AdapterDrop: "
        "the largest total over its draws, and their mean. Schema 1 recorded only the transient peak above "
        "what was allocated before the step (weights and optimizer state not included).",
        "",
    ]
    header = [
        "model",
        "phase",
        "batch",
        "seq",
        "variant",
        "parameters",
        "optimizer state",
        "gradients",
        "activations",
        "total",
        "mean over draws",
        "transient peak read from",
    ]
    for (comparison, series), members in group_by(measured, "comparison", "series").items():
        rows = [
            [
                r.model,
                r.phase,
                r.batch_size,
                r.seq_len,
                f"`{r.variant}`",
                mib(r.memory_params_bytes),
                mib(r.memory_optimizer_bytes),
                mib(r.memory_grads_bytes),
                mib(r.memory_activations_bytes),
                mib(r.peak_memory_bytes)
                if r.schema >= 2
                else f"{mib(r.peak_memory_bytes)} (schema 1: transient)",
                mib(r.peak_memory_expected_bytes),
                r.memory_kind or MISSING,
            ]
            for r in sorted(members, key=_row_order)
        ]
        title = f"{comparison} [{series}]" if series else comparison
        lines += [f"### {title}", "", *_table(header, rows), ""]
    return lines


def _superseded(loaded: Loaded) -> list[str]:
    if not loaded.superseded:
        return []
    lines = [
        "## Superseded runs",
        "",
        "Per group and series the report keeps one whole run: the latest that holds every scenario any run "
        "of the group holds (`adapterdrop.results.latest_runs`). These runs were not kept; their ratios "
        "would pair records of different runs.",
        "",
    ]
    rows = []
    for entry in loaded.superseded:
        old, new = entry.superseded[0], entry.kept[0] if entry.kept else None
        rows.append(
            [
                old.comparison,
                old.series or MISSING,
                old.model,
                _scenario(old),
                ", ".join(f"`{r.variant}` ({r.status})" for r in entry.superseded),
                f"{old.created_at} in `{old.source}`",
                f"{len(entry.kept)} records, {new.created_at} in `{new.source}`" if new else MISSING,
            ]
        )
    header = ["comparison", "series", "model", "scenario", "superseded records", "measured", "kept run"]
    return lines + _table(header, rows) + [""]


def _unpaired(unpaired: list[Unpaired]) -> list[str]:
    if not unpaired:
        return []
    rows = [
        [
            u.record.comparison,
            u.record.series or MISSING,
            u.record.model,
            _scenario(u.record),
            f"`{u.record.variant}`",
            times(u.speedup),
            u.why,
        ]
        for u in unpaired
    ]
    header = ["comparison", "series", "model", "scenario", "variant", "stored speedup", "why it is not shown"]
    intro = (
        "These records keep their times and memory, but their stored ratios cannot be paired within one run:"
    )
    return ["## Ratios not shown", "", intro, "", *_table(header, rows), ""]


def _left_out(left_out: list[ReportRecord]) -> list[str]:
    if not left_out:
        return []
    rows = [
        [r.comparison, r.series or MISSING, r.model, _scenario(r), f"`{r.variant}`", "; ".join(r.caveats)]
        for r in sorted(left_out, key=lambda r: (r.comparison, r.series, _row_order(r)))
    ]
    header = ["comparison", "series", "model", "scenario", "variant", "why"]
    intro = "Left out of every table and plot by `--exclude-noisy`: noisy or measured on a loaded machine."
    return ["## Left out", "", intro, "", *_table(header, rows), ""]


def _not_measured(records: list[ReportRecord]) -> list[str]:
    failed = [r for r in records if not r.measured]
    if not failed:
        return []
    failed.sort(
        key=lambda r: (r.status, r.comparison, r.series, r.phase, r.batch_size, variant_sort_key(r.variant))
    )
    rows = [
        [
            r.status,
            r.comparison,
            r.series or MISSING,
            r.model,
            r.phase,
            r.batch_size,
            r.seq_len,
            f"`{r.variant}`",
            r.error or "",
        ]
        for r in failed
    ]
    header = ["status", "comparison", "series", "model", "phase", "batch", "seq", "variant", "reason"]
    return ["## Records without a measurement (not plotted)", "", *_table(header, rows), ""]


def render(data: ReportData, figures: dict[str, list[Path]], out_dir: Path) -> str:
    """The whole report as markdown; ``figures`` maps a comparison to its PNG and SVG under ``out_dir``
    (image links are relative to it)."""
    shown = data.shown
    lines = ["# AdapterDrop efficiency report", "", *_sources(data)]
    single = [r for r in shown if not data_parallel.is_data_parallel(r)]  # the paper's are single processes
    lines += _environment(shown) + _paper(single) + _plots(figures, out_dir) + _missing(data.missing)
    lines += _summary_tables(shown) + data_parallel.table(shown) + execution.table(single)
    lines += _memory_tables(shown)
    lines += _superseded(data.loaded) + _unpaired(data.unpaired) + _left_out(data.left_out)
    lines += _not_measured(shown)
    return "\n".join(lines).rstrip() + "\n"
