"""Report generation from the records of a real tiny sweep (measured once per module, not hand-typed).

Where a test needs a situation the sweep cannot produce on demand (a second machine, a rerun, a noisy or
loaded record, an old schema-1 file), it edits copies of the real records and says which fields.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from conftest import REPO
from helpers_report import ratio_problems, tables
from matplotlib.collections import PolyCollection
from PIL import Image

from adapterdrop.cli import main
from adapterdrop.ideals import layer_count_ideal
from adapterdrop.plan import load_preset
from adapterdrop.report import NoRecordsError, ReportSummary, build_report, collect
from adapterdrop.report.comparisons import COMPARISONS
from adapterdrop.report.format import ms
from adapterdrop.report.markdown import render
from adapterdrop.report.paper import FIGURES
from adapterdrop.report.plots.memory import SCHEMA1_LABEL
from adapterdrop.results import ResultsFileError
from adapterdrop.sweep import run_sweep

PRESET = """
description = "every standard comparison of the report, on the tiny model"
models = ["tiny"]
devices = ["cpu"]
dtypes = ["fp32"]
threads = 1

[timing]
rounds = 3
min_sample_time_s = 0.005
warmup_steps = 1

[[comparison]]
name = "training"
phases = ["train"]
baseline = "full"
variants = ["adapter", "adapterdrop:n=2", "adapterdrop:robust", "parallel:tasks=2"]
batch_sizes = [1, 2]
seq_lens = [8]

[[comparison]]
name = "inference"
phases = ["infer"]
baseline = "full"
variants = ["adapter"]
batch_sizes = [1, 2]
seq_lens = [8]

[[comparison]]
name = "parallel"
phases = ["infer"]
baseline = "parallel:tasks={tasks}"
variants = ["parallel:tasks={tasks},n={n}"]
expand = { tasks = [2, 3], n = [0, 1, 3] }
batch_sizes = [1]
seq_lens = [8]

[[comparison]]
name = "fusion"
phases = ["infer"]
baseline = "full"
variants = ["fusion:adapters=3", "fusion:adapters=3,keep=1", "fusion:adapters=3,n=2"]
batch_sizes = [1]
seq_lens = [8]
"""

PLOT_STEMS = (
    "training_speedup",
    "inference_relative_speed",
    "parallel_speedup",
    "fusion_time",
    "efficiency",
    "memory",
)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Results file of a real sweep over every comparison the report draws (one machine)."""
    folder = tmp_path_factory.mktemp("sweep")
    preset = folder / "report.toml"
    preset.write_text(PRESET)
    path = folder / "results.jsonl"
    run_sweep(load_preset(preset), path)
    return path


@pytest.fixture(scope="module")
def report(results: Path, tmp_path_factory: pytest.TempPathFactory) -> ReportSummary:
    return build_report([results], tmp_path_factory.mktemp("report"))


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _markdown(paths: list[Path], **options: bool) -> str:
    """report.md without drawing the plots (the markdown does not depend on them but for their links)."""
    return render(collect(paths, **options), {}, Path("."))


def _as_results(records: list[dict], noisy: bool) -> list[dict]:
    """Copies whose verdict is ``noisy`` (the sweep ran on a machine whose load is not ours to decide)."""
    reason = ["variant IQR is 30% of its median (> 10%)"] if noisy else []
    return [{**r, "noisy": noisy, "noise": reason, "load": {**r["load"], "loaded": False}} for r in records]


def _name(cell: str) -> str:
    return cell.strip("`* ")


def _table_of(text: str, heading: str) -> list[dict[str, str]]:
    """The rows of the first table under the heading that starts with ``heading``."""
    return next(t for t in tables(text) if f"### {t.heading}".startswith(heading)).rows


def _section(text: str, title: str) -> str:
    return text.split(f"## {title}")[1].split("\n## ")[0]


# ------------------------------------------------------------------------------------------ files and plots


def test_report_writes_every_expected_file(report: ReportSummary) -> None:
    out = report.report.parent
    stems = {c.stem for c in COMPARISONS if c.name in report.comparisons_found}
    assert set(PLOT_STEMS) <= stems  # every comparison of the paper the sweep holds (others may be added)
    expected = {out / f"{stem}.{suffix}" for stem in stems for suffix in ("png", "svg")}
    assert set(report.files) == expected | {out / "report.md"}
    assert all(path.is_file() and path.stat().st_size > 0 for path in report.files)
    found = ["training", "inference", "parallel", "fusion", "efficiency", "memory"]
    assert [name for name in report.comparisons_found if name in found] == found
    assert {"devices", "data-parallel"} <= set(report.comparisons_missing)  # one machine, one dtype, no ddp


def test_plots_are_valid_images_of_sensible_size(report: ReportSummary) -> None:
    for path in report.files:
        if path.suffix == ".png":
            with Image.open(path) as image:
                image.verify()
            with Image.open(path) as image:
                width, height = image.size
            assert 500 <= width <= 4000 and 300 <= height <= 4000, (path.name, image.size)
        elif path.suffix == ".svg":
            root = ElementTree.parse(path).getroot()
            assert root.tag.endswith("svg") and root.get("width", "").endswith("pt")
            assert "axes_1" in path.read_text()  # at least one drawn panel


def test_report_embeds_plots_and_names_environment(report: ReportSummary, results: Path) -> None:
    text = report.report.read_text()
    out = report.report.parent
    for stem in PLOT_STEMS:
        assert f"]({stem}.png)" in text and (out / f"{stem}.png").is_file()
    env = _lines(results)[0]["env"]
    for fact in (env["torch"], env["transformers"], env["git_commit"][:12], env["hostname"], env["cpu"]):
        assert str(fact) in text
    assert "## Missing comparisons" in text and "**devices**" in text


def test_report_imports_no_torch() -> None:
    code = "import adapterdrop.report, sys; assert 'torch' not in sys.modules, 'torch imported'"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------------------------- ratios from one run


def test_every_printed_ratio_follows_from_the_numbers_beside_it(report: ReportSummary, results: Path) -> None:
    text = report.report.read_text()
    problems, checked = ratio_problems(text)
    assert problems == []
    paired = [r for r in _lines(results) if r["status"] == "ok" and r["variant"] != r["baseline"]]
    assert checked >= len(paired)  # every speedup of the sweep was found in a table and checked
    assert not re.search(r"\d[eE][-+]\d", text)  # no 5.58e+03: fixed notation throughout


def test_the_check_finds_a_speedup_taken_from_another_run(report: ReportSummary) -> None:
    """The check itself can fail: a speedup moved into another row (what pairing two runs printed)."""
    text = report.report.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| tiny | train | 2 | 8 | `adapter")]
    first, second = (re.search(r"\*?\d+\.\d{3}×\*? [\[(][^]|)]*[\])]", row).group() for row in rows[:2])
    doctored = text.replace(rows[0], rows[0].replace(first, second))
    problems, _ = ratio_problems(doctored)
    assert (
        problems
        and "speedup" in problems[0]
        and all(": adapter ('tiny', 'train', '2'" in p for p in problems)
    )


def test_the_check_finds_a_baseline_median_taken_from_another_run(report: ReportSummary) -> None:
    """A row whose baseline median and speedup agree with each other but not with the baseline's own row
    (another run's baseline printed beside this run's variant) is found."""
    text = report.report.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| tiny | train | 2 | 8 | `adapter` |"))
    cells = row.split(" | ")
    header = next(line for line in text.splitlines() if "| baseline median (ms) |" in line).split(" | ")
    column, speedup_column = header.index("baseline median (ms)"), header.index("speedup [95% CI]")
    median = float(cells[header.index("median (ms)")].strip("* "))
    # twice the baseline median and the speedup it gives: consistent with each other, not with the
    # baseline's own row
    doubled = f"{2 * float(cells[column].strip('* ')):.4g}"
    speedup = float(doubled) / median
    ideal = float(cells[header.index("ideal")].strip("*× "))
    cells[column] = doubled
    cells[speedup_column] = f"{speedup:.3f}× [0.1, 9.9]"
    cells[header.index("efficiency")] = f"{speedup / ideal:.3f}"  # the efficiency follows, too
    problems, _ = ratio_problems(text.replace(row, " | ".join(cells)))
    assert len(problems) == 1 and "is not its baseline row's" in problems[0]


def test_a_rerun_group_is_shown_from_one_run_and_the_other_is_named(results: Path, tmp_path: Path) -> None:
    """A later run of a group that lacks a variant (stored before every run was stored whole) must not lend
    its baseline to the earlier run's variant: the complete run is kept, the other is named."""
    records = _lines(results)
    group = [r for r in records if r["comparison"] == "training" and r["batch_size"] == 2]
    later = [
        {
            **r,
            "run_id": "later",
            "created_at": "2999-01-01T00:00:00+00:00",
            "time_median_s": r["time_median_s"] * 3,
        }
        for r in group
        if r["variant"] != "adapterdrop:robust" and r["status"] == "ok"
    ]
    path = _write(tmp_path / "rerun.jsonl", records + later)
    data = collect([path])
    assert data.loaded.read == len(records) + len(later) and len(data.loaded.records) == len(records)
    assert data.loaded.superseded_count == len(later)
    assert {r.run_id for r in data.loaded.superseded[0].superseded} == {"later"}
    text = _markdown([path])
    assert ratio_problems(text)[0] == []
    superseded = _section(text, "Superseded runs")
    assert "training" in superseded and "2999-01-01" in superseded


def test_merging_two_files_of_one_environment_says_what_was_superseded(results: Path, tmp_path: Path) -> None:
    """Issue 9 item 7: 42 records read, 21 kept, must not be silent."""
    records = _lines(results)
    again = [
        {**r, "run_id": "again-" + r["run_id"], "created_at": "2999-01-01T00:00:00+00:00"} for r in records
    ]
    second = _write(tmp_path / "second.jsonl", again)
    text = _markdown([results, second])
    assert f"Read {2 * len(records)} records from:" in text and f"Kept {len(records)} records" in text
    assert f"{len(records)} records of" in text and "## Superseded runs" in text
    assert len(tables(_section(text, "Superseded runs"))[0].rows) == len({r["run_id"] for r in records})


def test_a_speedup_whose_run_stores_no_baseline_is_not_shown(results: Path, tmp_path: Path) -> None:
    """Schema 1 re-measured a lone variant with its baseline and stored only the variant."""
    lone = next(r for r in _lines(results) if r["variant"] == "fusion:adapters=3,keep=1")
    path = _write(tmp_path / "lone.jsonl", [lone])
    data = collect([path])
    assert [u.record.variant for u in data.unpaired] == ["fusion:adapters=3,keep=1"]
    text = _markdown([path])
    assert "## Ratios not shown" in text and "stores no measured baseline `full`" in text
    row = next(line for line in text.splitlines() if line.startswith("| tiny | infer | 1 | 8 | `fusion"))
    assert "×" not in row  # its time is shown, its speedup is not


def test_the_same_file_twice_counts_once(results: Path) -> None:
    data = collect([results, results])
    assert data.loaded.read == 2 * len(_lines(results)) and data.loaded.duplicates == len(_lines(results))
    assert len(data.loaded.records) == len(_lines(results)) and not data.loaded.superseded


# ------------------------------------------------------------------------------------- intervals and noise


def test_intervals_are_printed_and_noisy_cells_marked(results: Path, tmp_path: Path) -> None:
    records = _as_results(_lines(results), noisy=False)
    adapter = next(r for r in records if r["variant"] == "adapter" and r["phase"] == "infer")
    adapter.update(noisy=True, noise=["adapter IQR is 30% of its median (> 10%)"])
    robust = next(r for r in records if r["variant"] == "adapterdrop:robust")
    robust["load"] = {**robust["load"], "loaded": True, "other_cpu_cores": 1.5}
    robust.update(noisy=True, noise=["machine loaded: other processes used 1.50 cores"])
    path = _write(tmp_path / "marked.jsonl", records)
    text = _markdown([path])
    low, high = adapter["speedup_ci"]
    row = next(
        line for line in text.splitlines() if f"| `adapter` | *{adapter['time_median_s'] * 1e3:.4g}" in line
    )
    assert f"*{adapter['speedup']:.3f}×* [{low:.3f}, {high:.3f}]" in row and "| noisy [" in row
    assert "adapter IQR is 30% of its median" in text
    robust_row = next(
        line for line in text.splitlines() if "`adapterdrop:robust`" in line and "| loaded [" in line
    )
    assert "*" in robust_row
    clean = next(r for r in records if r["variant"] == "adapterdrop:n=2" and r["batch_size"] == 1)
    assert f"| {clean['speedup']:.3f}× [{clean['speedup_ci'][0]:.3f}, {clean['speedup_ci'][1]:.3f}] |" in text


def test_exclude_noisy_leaves_noisy_and_loaded_records_out(results: Path, tmp_path: Path) -> None:
    records = _as_results(_lines(results), noisy=False)
    for record in records:
        if record["comparison"] == "inference":
            record["load"] = {**record["load"], "loaded": True, "other_cpu_cores": 1.2}
            record.update(noisy=True, noise=["machine loaded: other processes used 1.20 cores"])
    path = _write(tmp_path / "loaded.jsonl", records)
    data = collect([path], exclude_noisy=True)
    inference = [r for r in records if r["comparison"] == "inference"]
    assert len(data.left_out) == len(inference) and "inference" not in data.selected
    text = render(data, {}, Path("."))
    assert "### inference" not in text and len(tables(_section(text, "Left out"))[0].rows) == len(inference)
    kept = _markdown([path])  # without the option the same records are shown, marked
    assert "### inference" in kept and "| loaded [" in kept


def test_paper_figures_quote_results_only(results: Path, tmp_path: Path) -> None:
    text = _markdown([_write(tmp_path / "clean.jsonl", _as_results(_lines(results), noisy=False))])
    for figure in FIGURES:
        assert f"| {figure.result} | {figure.paper} | {figure.source} |" in text
    assert ratio_problems(text)[0] == []  # every quoted ratio follows from the two medians quoted with it
    training = next(line for line in text.splitlines() if line.startswith(f"| {FIGURES[0].result} |"))
    medians = {
        (r["variant"], r["batch_size"]): r["time_median_s"] for r in _lines(results) if r["phase"] == "train"
    }
    speedups = {b: medians["full", b] / medians["adapter", b] for b in (1, 2)}
    best = max(speedups, key=speedups.get)
    assert f"highest {speedups[best]:.3f}× [" in training
    assert (
        f"(`full` {ms(medians['full', best])} ms / `adapter` {ms(medians['adapter', best])} ms;" in training
    )
    # 5 dropped layers do not exist on a 4-layer model: named as not measured, not faked
    assert "not measured (needs `parallel:tasks=N` and `parallel:tasks=N,n=5`" in text
    noisy = _markdown([_write(tmp_path / "noisy.jsonl", _as_results(_lines(results), noisy=True))])
    training = next(line for line in noisy.splitlines() if line.startswith(f"| {FIGURES[0].result} |"))
    assert "not stated: 2 scenario(s) measured, all noisy or loaded" in training and "×" not in training


def test_schema1_records_say_they_have_no_interval(results: Path, tmp_path: Path) -> None:
    """Files written before schema 2: no run ids, intervals, verdicts, memory parts."""
    old = []
    for record in _lines(results):
        for name in (
            "run_id",
            "speedup_ci",
            "noisy",
            "noise",
            "load",
            "attention_kernel",
            "peak_memory_expected_bytes",
        ):
            record.pop(name, None)
        for name in (
            "memory_params_bytes",
            "memory_optimizer_bytes",
            "memory_grads_bytes",
            "memory_activations_bytes",
        ):
            record.pop(name, None)
        if record["time_median_s"] is not None:  # steady samples; one variant spread by ±30% (IQR 30%)
            median = record["time_median_s"]
            spread = 0.3 if record["variant"] == "fusion:adapters=3,n=2" else 0.0
            record["time_samples_s"] = [median * (1 - spread), median, median * (1 + spread)]
        old.append({**record, "schema": 1})
    text = _markdown([_write(tmp_path / "old.jsonl", old)])
    fusion = {_name(row["variant"]): row["verdict"] for row in _table_of(text, "### fusion")}
    assert fusion.pop("fusion:adapters=3,n=2").startswith("noisy [")  # judged by the spread rule
    assert set(fusion.values()) == {"result"}
    assert "fusion:adapters=3,n=2 IQR is 30% of its median (> 10%)" in text
    memory = collect([tmp_path / "old.jsonl"]).selected["memory"]
    fig = next(c for c in COMPARISONS if c.name == "memory").draw(memory)
    drawn = {container.get_label() for ax in fig.axes for container in ax.containers}
    assert drawn == {SCHEMA1_LABEL}  # a total only, said to be one, no invented parts
    summary = _section(text, "Summary per comparison")
    assert "(no interval: schema 1)" in summary and not re.search(r"× \[\d", summary)
    assert "(schema 1: transient)" in _section(text, "Memory per step")
    assert ratio_problems(text)[0] == []


def test_memory_parts_add_up_to_the_total(results: Path) -> None:
    text = _markdown([results])
    for table in tables(_section(text, "Memory per step")):
        for row in table.rows:
            if row["phase"] == "train":
                parts = sum(
                    float(row[name]) for name in ("parameters", "optimizer state", "gradients", "activations")
                )
                assert parts == pytest.approx(float(row["total"]), abs=2e-3 * float(row["total"]) + 1e-4), row
    full = next(r for r in _lines(results) if r["variant"] == "full" and r["phase"] == "train")
    adapter = next(r for r in _lines(results) if r["variant"] == "adapter" and r["group"] == full["group"])
    assert full["memory_optimizer_bytes"] > 10 * adapter["memory_optimizer_bytes"]  # the saving shows


# ------------------------------------------------------------------------------------------ the rest


def test_skipped_records_are_listed_not_plotted(report: ReportSummary) -> None:
    text = report.report.read_text()
    listed = _section(text, "Records without a measurement (not plotted)")
    assert "| skipped | training |" in listed and "`parallel:tasks=2`" in listed
    training_rows = text.split("### training (baseline `full`)")[1].split("\n#")[0]
    assert "`adapter` |" in training_rows and "`parallel:tasks=2` |" not in training_rows


def test_missing_comparison_is_named(results: Path, tmp_path: Path) -> None:
    fusion = _write(tmp_path / "fusion.jsonl", [r for r in _lines(results) if r["comparison"] == "fusion"])
    without_fusion = _write(
        tmp_path / "no-fusion.jsonl", [r for r in _lines(results) if r["comparison"] == "inference"]
    )
    build_report([fusion], tmp_path / "out")
    assert (tmp_path / "out" / "fusion_time.png").exists()
    summary = build_report([without_fusion], tmp_path / "out")  # the same folder: no stale fusion plot
    assert "fusion" in summary.comparisons_missing and "fusion" not in summary.comparisons_found
    assert not (tmp_path / "out" / "fusion_time.png").exists()
    assert not (tmp_path / "out" / "fusion_time.svg").exists()
    text = summary.report.read_text()
    missing = _section(text, "Missing comparisons")
    assert "**fusion**" in missing and "`fusion:adapters=N[,keep=k][,n=K]`" in missing
    assert "](fusion_time.png)" not in text


def test_two_machines_merge_into_labelled_series(results: Path, tmp_path: Path) -> None:
    second = []
    for record in _lines(results):
        record["env"] = {**record["env"], "hostname": "second-machine", "git_commit": "f" * 40}
        second.append(record)
    other = _write(tmp_path / "second.jsonl", second)
    data = collect([results, other])
    assert "devices" in data.selected and not data.loaded.superseded  # two series, nothing superseded
    text = render(data, {}, Path("."))
    env_table = _section(text, "Environment")
    assert env_table.count("second-machine") >= 1 and "commit fffffff" in env_table
    assert len([line for line in env_table.splitlines() if line.startswith("| second-machine")]) == 1
    assert "### training [second-machine · commit fffffff] (baseline `full`)" in text
    fig = next(c for c in COMPARISONS if c.name == "devices").draw(data.selected["devices"])
    for ax in fig.axes:  # one bar per series for every variant on the axis
        assert len(ax.patches) == 2 * len(ax.get_xticklabels())


def test_corrupt_results_file_names_the_line(results: Path, tmp_path: Path) -> None:
    path = tmp_path / "corrupt.jsonl"
    path.write_text(results.read_text() + "{not json\n")
    with pytest.raises(ResultsFileError, match=rf"corrupt.jsonl:{len(_lines(results)) + 1}:"):
        build_report([path], tmp_path / "out")


def test_a_file_without_records_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(NoRecordsError, match="no records in .*empty.jsonl"):
        build_report([empty], tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written
    assert main(["report", str(empty), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("adapterdrop: error: no records") and len(err.splitlines()) == 1


def test_report_command_says_what_it_did_not_show(results: Path, tmp_path: Path, capsys) -> None:
    fusion = [r for r in _lines(results) if r["comparison"] == "fusion"]
    first = _write(tmp_path / "first.jsonl", fusion)
    again = [{**r, "run_id": "again", "created_at": "2999-01-01T00:00:00+00:00"} for r in fusion]
    second = _write(tmp_path / "second.jsonl", again)
    assert main(["report", str(first), str(second), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err.splitlines()
    count = len(fusion)
    assert err == [
        f"adapterdrop: read {2 * count} records, kept {count} (one run per group and series)",
        f"adapterdrop: {count} records of 1 run(s) were superseded by a later or more complete run of their "
        "group (report.md: Superseded runs)",
    ]


def test_layer_count_ideal() -> None:
    assert layer_count_ideal(tasks=8, dropped=0, layers=12) == 1.0
    assert layer_count_ideal(tasks=8, dropped=5, layers=12) == pytest.approx(96 / 61)
    assert layer_count_ideal(tasks=2, dropped=12, layers=12) == pytest.approx(2.0)


# ---------------------------------------------------------------------------- what each figure holds


def _points(fig) -> list[tuple[float, float, bool]]:
    """(x, y, filled) of every marker of measured data in ``fig`` (markers drawn without a line)."""
    found = []
    for ax in fig.axes:
        for line in ax.get_lines():
            if line.get_linestyle() == "None" and line.get_marker() not in ("*", "_", "None", None):
                filled = line.get_markerfacecolor() != "white"
                found += [(x, y, filled) for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True)]
    return found


def _caption(fig) -> str:
    return " ".join(" ".join(text.get_text().split()) for text in fig.texts)


def _selected(results: Path, name: str):
    data = collect([results])
    comparison = next(c for c in COMPARISONS if c.name == name)
    return comparison, data.selected[name]


def test_speedup_plot_holds_every_speedup_its_interval_and_verdict(results: Path) -> None:
    comparison, records = _selected(results, "training")
    fig = comparison.draw(records)
    points = _points(fig)
    assert sorted(y for _, y, _ in points) == pytest.approx(sorted(r.speedup for r in records))
    assert sum(not filled for *_, filled in points) == sum(bool(r.caveats) for r in records)
    assert len({x for x, _, _ in points}) == len(points)  # dodged: no marker hides another
    bars = [c for ax in fig.axes for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    segments = sum(len(c.lines[2][0].get_segments()) for c in bars)
    assert segments == sum(r.speedup_ci is not None for r in records)
    assert "95% interval" in _caption(fig) and "one run" in _caption(fig)


def test_parallel_plot_shows_the_papers_range_above_nothing_it_hides(results: Path) -> None:
    comparison, records = _selected(results, "parallel")
    for record in records:  # the tiny model has 4 layers: draw its n=3 points as if n=5, to see the band
        record.variant = record.variant.replace("n=3", "n=5")
    fig = comparison.draw(records)
    ax = fig.axes[0]
    band = [c for c in ax.collections if isinstance(c, PolyCollection)]
    (ys,) = {tuple(sorted({round(v, 2) for v in c.get_paths()[0].vertices[:, 1]})) for c in band}
    assert (min(ys), max(ys)) == (1.21, 1.42)
    star = next(line for line in ax.get_lines() if line.get_marker() == "*")
    assert star.get_zorder() > max(line.get_zorder() for line in ax.get_lines() if line is not star)
    assert ax.get_yscale() == "log"
    assert sorted(y for _, y, _ in _points(fig)) == pytest.approx(sorted(r.speedup for r in records))


def test_efficiency_plot_names_the_batch_of_every_point(results: Path) -> None:
    comparison, records = _selected(results, "efficiency")
    fig = comparison.draw(records)
    assert sorted(y for _, y, _ in _points(fig)) == pytest.approx(sorted(r.efficiency for r in records))
    legends = {t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts()}
    assert {f"batch {r.batch_size}" for r in records} <= legends
    ticks = {t.get_text() for ax in fig.axes for t in ax.get_xticklabels()}
    assert {r.variant for r in records} <= ticks


def test_memory_plot_stacks_the_parts_and_says_what_they_are(results: Path) -> None:
    comparison, records = _selected(results, "memory")
    fig = comparison.draw(records)
    train = next(ax for ax in fig.axes if ax.get_title().startswith("training (train)"))
    full = next(r for r in records if r.variant == "full" and r.phase == "train" and r.batch_size == 2)
    scale = 2**-20 if "MiB" in train.get_ylabel() else 2**-10
    heights = {
        container.get_label(): container.patches[0].get_height() for container in train.containers
    }  # the first bar of each part is `full`, the baseline
    assert heights["parameters"] == pytest.approx(full.memory_params_bytes * scale)
    assert heights["optimizer state"] == pytest.approx(full.memory_optimizer_bytes * scale)
    assert heights["gradients"] == pytest.approx(full.memory_grads_bytes * scale)
    assert sum(heights.values()) == pytest.approx(full.peak_memory_bytes * scale)
    caption = _caption(fig)
    assert "psutil" not in caption and "counted from the tensors" in caption
    assert "malloc" in train.get_title()


def test_fusion_plot_labels_each_bar_with_its_median_and_speedup(results: Path) -> None:
    comparison, records = _selected(results, "fusion")
    fig = comparison.draw(records)
    labels = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    for record in records:
        assert f"{ms(record.time_median_s)} ms" in labels
        if not record.is_baseline:
            assert f"{record.speedup:.3f}×" in labels
