"""The headline `adapterdrop run` prints: the paper's figures beside the measured ones, on records built in
memory (no sweep), read as a sceptical reader would: every printed ratio must follow from the two medians
printed beside it."""

from __future__ import annotations

import re
from pathlib import Path

from helpers_report import Printed

from adapterdrop.measure.stats import paired_speedup_interval
from adapterdrop.report import build_report
from adapterdrop.report.headline import MAX_ROWS, headline, paper_table, where
from adapterdrop.report.ratios import pair_runs
from adapterdrop.report.records import ReportRecord
from adapterdrop.results import append_records
from adapterdrop.scenario import Record

#: one printed ratio: ``train b8 s128  1.600× [1.600, 1.600]  200.0 ms / 125.0 ms  60% faster  result``
ROW = re.compile(
    r"^ {4}(?P<scenario>\w+ b\d+ s\d+)\s+(?P<ratio>\d+\.\d+)× (?P<interval>\[[^\]]*\]|\(no interval[^)]*\))"
    r"\s+(?P<num>[\d.]+) ms / (?P<den>[\d.]+) ms\s+(?P<words>\d+% (?:faster|of the speed))\s+"
    r"(?P<verdict>result|noisy|loaded)$"
)
JITTER = (-3, -2, -1, 0, 1, 2, 3)  # seven rounds, each a step a little slower than the last


def run_of(
    baseline: str, medians: dict[str, float], *, phase: str = "infer", batch: int = 8, noisy: str = ""
) -> list[Record]:
    """One interleaved run: ``medians`` (seconds, the baseline's among them) of one scenario; the variant
    named ``noisy`` carries a noise verdict. Speedups and intervals as the measurement stores them."""
    run_id = f"{'+'.join(medians)}-{phase}-{batch}"
    samples = {v: [m * (1 + 0.002 * k) for k in JITTER] for v, m in medians.items()}
    records = []
    for variant, median in medians.items():
        speedup = medians[baseline] / median
        ci = paired_speedup_interval(samples[baseline], samples[variant])
        records.append(
            Record(
                model="bert-small",
                variant=variant,
                phase=phase,
                batch_size=batch,
                seq_len=128,
                device="cpu",
                dtype="fp32",
                precision="native",
                threads=2,
                comparison={"train": "training", "infer": "inference"}[phase],
                baseline=baseline,
                status="ok",
                key=f"{run_id}-{variant}",
                group=run_id,
                run_id=run_id,
                time_median_s=median,
                time_samples_s=samples[variant],
                speedup=speedup,
                speedup_ci=list(ci) if ci else None,
                noisy=variant == noisy,
                noise=[f"{variant} IQR is 18% of its median (> 10%)"] if variant == noisy else [],
                created_at="2026-01-01T00:00:00+00:00",
            )
        )
    return records


def quick_like() -> list[Record]:
    """A record of every kind the quick preset measures, one noisy."""
    records = []
    for batch, (full, adapter, robust) in {1: (0.1, 0.08, 0.06), 8: (0.2, 0.125, 0.1)}.items():
        medians = {"full": full, "adapter": adapter, "adapterdrop:robust": robust}
        records += run_of("full", medians, phase="train", batch=batch, noisy="adapter" if batch == 1 else "")
    records += run_of("full", {"full": 0.05, "adapter": 0.052})
    records += run_of("parallel:tasks=2", {"parallel:tasks=2": 0.26, "parallel:tasks=2,n=5": 0.2})
    fusion = {"full": 0.13, "fusion:adapters=8": 0.33, "fusion:adapters=8,keep=2": 0.21}
    return records + run_of("full", fusion)


def paired(records: list[Record]) -> list[ReportRecord]:
    """The records as the report sees them, each paired with its run's baseline."""
    shown = [ReportRecord.of(r, "memory") for r in records]
    assert pair_runs(shown) == []
    return shown


def rows(lines: list[str]) -> list[re.Match[str]]:
    return [found for line in lines if (found := ROW.match(line))]


def test_every_printed_ratio_follows_from_the_two_medians_beside_it() -> None:
    lines = paper_table(paired(quick_like()))
    printed = rows(lines)
    # train: adapter and robust at two batch sizes; infer: adapter, parallel, fusion, pruned fusion
    assert len(printed) == 8
    for row in printed:
        medians = Printed.parse(row["num"]) / Printed.parse(row["den"])
        assert medians.overlaps(Printed.parse(row["ratio"])), row.group()
        assert row["interval"].startswith("["), row.group()  # schema-2 records: each with its interval
    assert max(len(line) for line in lines) <= 110


def test_a_ratio_is_printed_with_its_medians_its_interval_and_the_papers_figure() -> None:
    lines = paper_table(paired(quick_like()))
    start = lines.index("Adapter training step vs full fine-tuning")
    block = lines[start : lines.index("Adapter inference vs full model")]
    assert (
        block[1]
        == "  paper (§2, Table 1): up to 60% faster (BERT-base, GPU; Pfeiffer a bit faster than Houlsby)"
    )
    assert block[2] == "  measured on bert-small: full / adapter"
    low, high = rows(block[3:5])
    assert (high["scenario"], high["ratio"], high["num"], high["den"]) == (
        "train b8 s128",
        "1.600",
        "200.0",
        "125.0",
    )
    assert (high["interval"], high["words"], high["verdict"]) == ("[1.600, 1.600]", "60% faster", "result")
    assert (low["scenario"], low["ratio"], low["verdict"]) == ("train b1 s128", "1.250", "noisy")
    inference = rows(lines[lines.index("Adapter inference vs full model") :])[0]
    assert (inference["ratio"], inference["words"]) == ("0.962", "96% of the speed")


def test_a_loaded_measurement_is_named_loaded_and_a_missing_figure_says_what_it_needs() -> None:
    records = run_of("full", {"full": 0.2, "adapter": 0.125}, phase="train", noisy="adapter")
    for record in records:
        record.load = {"loaded": True, "other_cpu_cores": 1.2}
    lines = paper_table(paired(records))
    (row,) = rows(lines)
    assert row["verdict"] == "loaded"
    assert "  not measured (needs parallel:tasks=N and parallel:tasks=N,n=5 in one group)" in lines


def test_past_max_rows_the_lowest_and_highest_result_stand_for_the_rest() -> None:
    records = []
    for batch in range(1, MAX_ROWS + 3):
        adapter = 0.1 * (1 + 0.01 * batch)  # the speedup falls with the batch size
        records += run_of(
            "full", {"full": 0.1, "adapter": adapter}, batch=batch, noisy="adapter" if batch == 3 else ""
        )
    lines = paper_table(paired(records))
    block = lines[lines.index("Adapter inference vs full model") :]
    low, high = rows(block)
    assert (low["scenario"], high["scenario"]) == (f"infer b{MAX_ROWS + 2} s128", "infer b1 s128")
    more = f"    {MAX_ROWS} more: {MAX_ROWS - 1} results between the lowest and highest shown, 1 noisy"
    assert more + " (report.md: Summary per comparison)" in block


def test_where_lists_the_report_and_each_plot_with_its_svg(tmp_path: Path) -> None:
    files = [
        tmp_path / "a.png",
        tmp_path / "a.svg",
        tmp_path / "b.png",
        tmp_path / "b.svg",
        tmp_path / "r.md",
    ]
    assert where(files) == [
        f"Report: {tmp_path / 'r.md'}",
        "Plots:",
        f"  {tmp_path / 'a.png'}  {tmp_path / 'a.svg'}",
        f"  {tmp_path / 'b.png'}  {tmp_path / 'b.svg'}",
    ]
    assert where([tmp_path / "r.md"])[1] == "Plots: none drawn (report.md: Missing comparisons)"


def test_the_headline_of_a_built_report_names_files_that_exist(tmp_path: Path) -> None:
    results = tmp_path / "quick.jsonl"
    append_records(results, quick_like())
    summary = build_report([results], tmp_path / "out")
    text = headline(summary)
    assert text.startswith("The paper's figures and the measured ones")
    assert f"\nReport: {tmp_path / 'out' / 'report.md'}\n" in text
    plots = [Path(p) for line in text.split("\nPlots:\n")[1].splitlines() for p in line.split()]
    assert plots and all(p.is_file() for p in plots) and len(plots) == len(summary.files) - 1
    assert len(rows(text.splitlines())) == 8


def test_a_run_of_none_of_the_papers_comparisons_says_so_in_two_lines() -> None:
    lines = paper_table(paired(run_of("full", {"full": 0.2, "lora": 0.15}, phase="train")))
    assert len(lines) == 2 and "none of its comparisons is in this run" in lines[0]
    assert not any("not measured" in line for line in lines)
