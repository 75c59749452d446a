"""Execution modes end to end: ``adapterdrop sweep --exec eager --exec compile`` on a tiny model, and the
report's comparison of the modes (which verdicts change between them), from stored records."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from helpers_report import ratio_problems, tables

from adapterdrop.cli import main
from adapterdrop.report import build_report
from adapterdrop.report.execution import direction
from adapterdrop.report.records import ReportRecord
from adapterdrop.results import append_records, load_records
from adapterdrop.scenario import Record, Scenario

ENV = {"hostname": "box", "torch": "2.x", "transformers": "5.x", "git_commit": "abc1234"}


def run_of(mode: str, run_id: str, times: dict[str, list[float]], interval: list[float]) -> list[Record]:
    """One stored run of `full` (baseline) and `adapter` in ``mode``: ``times`` are per-round seconds; the
    adapter's speedup follows from the two medians and gets ``interval``."""
    records = []
    medians = {variant: statistics.median(samples) for variant, samples in times.items()}
    for variant, samples in times.items():
        scenario = Scenario(
            model="tiny",
            variant=variant,
            phase="infer",
            batch_size=1,
            seq_len=8,
            comparison="modes",
            baseline="full",
            exec=mode,
        )
        values = {"speedup": medians["full"] / medians[variant]}
        values["speedup_ci"] = [1.0, 1.0] if variant == "full" else interval
        records.append(
            Record.for_scenario(
                scenario,
                "ok",
                run_id=run_id,
                created_at="2026-01-01T00:00:00+00:00",
                env=ENV,
                time_median_s=medians[variant],
                time_iqr_s=0.0,
                time_samples_s=samples,
                throughput_samples_s=1 / medians[variant],
                noisy=False,
                exec_setup_s=None if mode == "eager" else 12.5,
                exec_recompiles=None if mode == "eager" else 0,
                **values,
            )
        )
    return records


def test_the_report_marks_a_verdict_that_changes_between_modes(tmp_path: Path) -> None:
    path = tmp_path / "modes.jsonl"
    slower = run_of("eager", "r1", {"full": [1.0, 1.0, 1.0], "adapter": [1.25, 1.25, 1.25]}, [1.2, 1.3])
    slower[1].speedup_ci = [0.78, 0.82]  # eager: the adapter is slower
    tie = run_of("compile", "r2", {"full": [0.5, 0.5, 0.5], "adapter": [0.51, 0.51, 0.51]}, [0.97, 1.03])
    append_records(path, slower + tie)
    summary = build_report([path], tmp_path / "report")
    assert "execution" in summary.comparisons_found
    assert (tmp_path / "report" / "execution_modes.png").stat().st_size > 10_000
    markdown = summary.report.read_text()
    (modes,) = [t for t in tables(markdown) if t.heading.startswith("modes: tiny infer")]
    rows = {(r["variant"], r["mode"]): r for r in modes.rows}
    assert rows[("`adapter`", "eager")]["direction"] == "slower"
    assert rows[("`adapter`", "compile")]["direction"] == "tie"
    assert rows[("`adapter`", "compile")]["between modes"] == "**changes**"
    assert rows[("`adapter`", "compile")]["setup (s)"] == "12.5"
    assert "- modes: tiny infer b=1 s=8 `adapter`: eager slower, compile tie" in markdown
    problems, checked = ratio_problems(markdown)
    assert problems == [] and checked >= 4  # every speedup printed beside the medians it comes from
    series = {t.heading for t in tables(markdown) if t.heading.startswith("modes [")}
    assert series == {"modes [eager] (baseline `full`)", "modes [compile] (baseline `full`)"}  # not mixed


def test_a_direction_is_stated_for_results_only(tmp_path: Path) -> None:
    (full, adapter) = run_of("eager", "r1", {"full": [1.0] * 3, "adapter": [0.8] * 3}, [1.2, 1.3])
    path = tmp_path / "one.jsonl"
    append_records(path, [full, adapter])
    (record,) = [r for r in load_records(path) if r.variant == "adapter"]
    shown = ReportRecord.of(record, str(path))
    assert direction(shown) == "faster"
    shown.caveats = ["adapter IQR is 30% of its median (> 10%)"]
    assert direction(shown) is None


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    """The equivalence tests' config (no dropout): its adapter graph is in inductor's cache already."""
    path = tmp_path_factory.mktemp("sweep") / "config.json"
    path.write_text(
        json.dumps(
            {
                "model_type": "bert",
                "num_hidden_layers": 4,
                "hidden_size": 32,
                "num_attention_heads": 2,
                "intermediate_size": 64,
                "vocab_size": 99,
                "max_position_embeddings": 64,
                "hidden_dropout_prob": 0.0,
                "attention_probs_dropout_prob": 0.0,
            }
        )
    )
    return str(path)


def test_sweep_eager_and_compile_then_report(model: str, tmp_path: Path, capsys) -> None:
    results, out = tmp_path / "modes.jsonl", tmp_path / "report"
    argv = ["sweep", "--variant", "full", "--variant", "adapter", "--phase", "infer", "--model", model]
    argv += ["--batch-size", "2", "--seq-len", "8", "--threads", "1", "--rounds", "3"]
    argv += ["--min-sample-time", "0.005", "--exec", "eager", "--exec", "compile", "--results", str(results)]
    assert main([*argv, "--no-progress"]) == 0
    records = {(r.variant, r.exec): r for r in load_records(results)}
    assert set(records) == {(v, m) for v in ("full", "adapter") for m in ("eager", "compile")}
    assert all(r.status == "ok" for r in records.values())
    assert len({r.run_id for r in records.values()}) == 2  # one run per mode
    for variant in ("full", "adapter"):
        eager, compiled = records[variant, "eager"], records[variant, "compile"]
        assert compiled.flops_step == eager.flops_step  # counted on the eager step: the same math
        assert eager.exec_setup_s is None and compiled.exec_setup_s > 0
        assert compiled.exec_recompiles == 0 and compiled.exec_info["compiles_after_setup"] == 0
        assert compiled.peak_memory_bytes and compiled.memory_kind == eager.memory_kind
    assert main(["report", str(results), "--out", str(out)]) == 0
    markdown = (out / "report.md").read_text()
    assert "## Execution modes" in markdown and (out / "execution_modes.svg").is_file()
    (modes,) = [t for t in tables(markdown) if t.heading.startswith("cli: ")]
    assert {(r["variant"], r["mode"]) for r in modes.rows} == {
        (f"`{v}`", m) for v in ("full", "adapter") for m in ("eager", "compile")
    }
    capsys.readouterr()
