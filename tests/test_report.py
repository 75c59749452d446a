"""Report generation from records of a real tiny sweep (measured once per module, not hand-typed)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from PIL import Image

from adapterdrop.plan import load_preset
from adapterdrop.report import ReportSummary, build_report
from adapterdrop.report.paper import FIGURES
from adapterdrop.report.records import load_all
from adapterdrop.results import ResultsFileError
from adapterdrop.sweep import run_sweep
from adapterdrop.variants.multitask import layer_count_ideal

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


def test_report_writes_every_expected_file(report: ReportSummary) -> None:
    out = report.report.parent
    expected = {out / f"{stem}.{suffix}" for stem in PLOT_STEMS for suffix in ("png", "svg")}
    assert set(report.files) == expected | {out / "report.md"}
    assert all(path.is_file() and path.stat().st_size > 0 for path in report.files)
    assert report.comparisons_found == ["training", "inference", "parallel", "fusion", "efficiency", "memory"]
    assert report.comparisons_missing == ["devices"]  # one machine, one dtype


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
    record = _lines(results)[0]
    env = record["env"]
    for fact in (env["torch"], env["transformers"], env["git_commit"][:12], env["hostname"], env["cpu"]):
        assert str(fact) in text
    assert "## Missing comparisons" in text and "**devices**" in text


def test_summary_tables_hold_the_records_numbers(report: ReportSummary, results: Path) -> None:
    text = report.report.read_text()
    for comparison in ("training", "inference", "parallel", "fusion"):
        assert f"### {comparison} (baseline" in text
    ok = [r for r in _lines(results) if r["status"] == "ok"]
    for record in ok[:: max(1, len(ok) // 5)]:
        row = f"| `{record['variant']}` | {record['time_median_s'] * 1e3:.3g} | "
        assert row in text, row


def test_paper_figures_are_quoted_with_sources_beside_measured(report: ReportSummary, results: Path) -> None:
    text = report.report.read_text()
    for figure in FIGURES:
        assert f"| {figure.result} | {figure.paper} | {figure.source} |" in text
    # adapter training: the measured speedups are the records' time ratios within a group
    records = load_all([results])
    groups = {}
    for r in records:
        if r["phase"] == "train" and r["status"] == "ok":
            groups.setdefault(r["group"], {})[r["variant"]] = r["time_median_s"]
    best = max(g["full"] / g["adapter"] for g in groups.values())
    measured = FIGURES[0].measured(records)
    assert measured is not None and f"{best:.2f}×" in measured
    # 5 dropped layers do not exist on a 4-layer model: named as not measured, not faked
    assert "not measured (needs `parallel:tasks=N` and `parallel:tasks=N,n=5`" in text


def test_skipped_records_are_listed_not_plotted(report: ReportSummary) -> None:
    text = report.report.read_text()
    listed = text.split("## Records without a measurement (not plotted)")[1]
    assert "| skipped | training |" in listed and "`parallel:tasks=2`" in listed
    training_rows = text.split("### training (baseline `full`)")[1].split("\n#")[0]
    assert "`adapter` |" in training_rows and "`parallel:tasks=2` |" not in training_rows


def test_missing_comparison_is_named(results: Path, tmp_path: Path) -> None:
    without_fusion = _write(
        tmp_path / "no-fusion.jsonl", [r for r in _lines(results) if r["comparison"] != "fusion"]
    )
    build_report([results], tmp_path / "out")
    assert (tmp_path / "out" / "fusion_time.png").exists()
    summary = build_report([without_fusion], tmp_path / "out")  # the same folder: no stale fusion plot
    assert "fusion" in summary.comparisons_missing and "fusion" not in summary.comparisons_found
    assert not (tmp_path / "out" / "fusion_time.png").exists()
    assert not (tmp_path / "out" / "fusion_time.svg").exists()
    text = summary.report.read_text()
    missing = text.split("## Missing comparisons")[1]
    assert "**fusion**" in missing and "`fusion:adapters=N[,keep=k][,n=K]`" in missing
    assert "](fusion_time.png)" not in text


def test_two_machines_merge_into_labelled_series(results: Path, tmp_path: Path) -> None:
    second = []
    for record in _lines(results):
        record["env"] = {**record["env"], "hostname": "second-machine", "git_commit": "f" * 40}
        second.append(record)
    other = _write(tmp_path / "second.jsonl", second)
    summary = build_report([results, other], tmp_path / "out")
    assert "devices" in summary.comparisons_found
    text = summary.report.read_text()
    env_table = text.split("## Environment")[1].split("##")[0]
    assert env_table.count("second-machine") >= 1 and "commit fffffff" in env_table
    assert len([line for line in env_table.splitlines() if line.startswith("| second-machine")]) == 1
    assert "### training [second-machine · commit fffffff] (baseline `full`)" in text


def test_rerun_record_replaces_the_earlier_one(results: Path, tmp_path: Path) -> None:
    records = _lines(results)
    retried = {**records[0], "created_at": "2999-01-01T00:00:00+00:00"}
    path = _write(tmp_path / "retried.jsonl", [*records, retried])
    loaded = load_all([path, path])  # the same file twice counts once too
    assert len(loaded) == len(records)
    assert [r for r in loaded if r["key"] == retried["key"]][0]["created_at"] == retried["created_at"]


def test_corrupt_results_file_names_the_line(results: Path, tmp_path: Path) -> None:
    path = tmp_path / "corrupt.jsonl"
    path.write_text(results.read_text() + "{not json\n")
    with pytest.raises(ResultsFileError, match=rf"corrupt.jsonl:{len(_lines(results)) + 1}:"):
        build_report([path], tmp_path / "out")


def test_layer_count_ideal() -> None:
    assert layer_count_ideal(tasks=8, dropped=0, layers=12) == 1.0
    assert layer_count_ideal(tasks=8, dropped=5, layers=12) == pytest.approx(96 / 61)
    assert layer_count_ideal(tasks=2, dropped=12, layers=12) == pytest.approx(2.0)
