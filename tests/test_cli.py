"""The command line: subcommands, tables, and one-line errors with a non-zero exit status."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO

from adapterdrop.cli import main
from adapterdrop.variants import list_variants

TINY = [
    "--model",
    "tiny",
    "--batch-size",
    "2",
    "--seq-len",
    "8",
    "--threads",
    "1",
    "--rounds",
    "2",
    "--min-sample-time",
    "0.005",
    "--warmup",
    "0",
]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse: --help and usage errors
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("command", [[], ["sweep"], ["measure"], ["env"], ["variants"], ["report"], ["run"]])
def test_help(capsys, command):
    status, out, _ = run(capsys, *command, "--help")
    assert status == 0 and "usage: adapterdrop" in out


def test_variants_lists_every_variant_and_option(capsys):
    status, out, _ = run(capsys, "variants")
    assert status == 0
    for info in list_variants():
        assert f"\n{info.name}" in f"\n{out}"
        for option in info.options:
            assert f"    {option.name}=" in out


def test_env_json(capsys):
    status, out, _ = run(capsys, "env", "--json", "--threads", "1")
    env = json.loads(out)
    assert status == 0 and env["threads"] == 1 and env["device"] == "cpu"


def test_measure_prints_a_table_and_appends(capsys, tmp_path):
    results = tmp_path / "r.jsonl"
    status, out, err = run(
        capsys,
        "measure",
        "--variant",
        "adapter",
        "--baseline",
        "full",
        "--phase",
        "train",
        "--results",
        str(results),
        *TINY,
    )
    assert status == 0, err
    header, rule, *rows = out.splitlines()
    assert header.split()[:4] == ["variant", "phase", "device", "status"]
    assert [row.split()[:4] for row in rows] == [
        ["full", "train", "cpu", "ok"],
        ["adapter", "train", "cpu", "ok"],
    ]
    assert [json.loads(line)["variant"] for line in results.read_text().splitlines()] == ["full", "adapter"]


def test_measure_json(capsys):
    status, out, _ = run(capsys, "measure", "--variant", "adapterdrop:n=1", "--json", *TINY)
    record = json.loads(out)
    assert status == 0 and record["variant"] == "adapterdrop:n=1" and record["status"] == "ok"


def test_sweep_from_flags(capsys, tmp_path):
    results = tmp_path / "r.jsonl"
    argv = ["sweep", "--variant", "full", "--variant", "adapter", "--phase", "infer"]
    argv += ["--results", str(results), "--no-progress", *TINY]
    status, out, err = run(capsys, *argv)
    assert status == 0, err
    assert out.strip() == f"2 record(s) written to {results} (ok 2)"
    status, out, _ = run(capsys, *argv)
    assert out.strip() == f"0 record(s) written to {results} (nothing new)"


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (
            ["measure", "--variant", "full", "--batch-size", "0"],
            2,
            "argument --batch-size: must be a positive",
        ),
        (["measure", "--variant", "full", "--device", "tpu"], 1, "unknown device 'tpu'"),
        (["measure", "--variant", "fancy"], 1, "unknown variant 'fancy'"),
        (
            ["measure", "--variant", "adapterdrop:n=9", "--model", "tiny"],
            1,
            "adapterdrop:n=9 on tiny: n=9 is out",
        ),
        (["measure", "--variant", "full", "--model", "bert-huge"], 1, "unknown model preset 'bert-huge'"),
        (["sweep", "--preset", "nope"], 1, "unknown sweep preset 'nope'"),
        (
            ["sweep", "--preset", "quick", "--variant", "full"],
            1,
            "--variant cannot be combined with --preset",
        ),
        (["sweep"], 1, "give --preset NAME or at least one --variant"),
        (["sweep", "--preset", "quick", "--device", "cuda:7"], 1, "cuda:7"),
        (["report", "missing.jsonl", "--out", "x"], 1, "missing.jsonl: no such results file"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_bad_input_is_one_line(capsys, argv, status, message):
    got, out, err = run(capsys, *argv)
    assert got == status
    assert err.startswith("adapterdrop: error: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_corrupt_results_file_names_the_line(capsys, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"schema": 1}\n')
    status, _, err = run(capsys, "report", str(path), "--out", str(tmp_path / "out"))
    assert status == 1
    fields = "model, variant, phase, batch_size, seq_len, device, dtype, precision, threads, comparison"
    expected = f"{path}:1: not a valid record: missing field(s) {fields}, baseline, status, key"
    assert err.strip() == f"adapterdrop: error: {expected}"


def test_no_traceback_from_the_console_entry_point(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("[1, 2\n{}\n")
    done = subprocess.run(
        [sys.executable, "-m", "adapterdrop", "sweep", "--variant", "full", "--results", str(path), *TINY],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    reason = "Expecting ',' delimiter: line 1 column 6 (char 5)"
    assert done.stderr == f"adapterdrop: error: {path}:1: not valid JSON ({reason})\n"


def test_run_sweeps_then_reports(capsys, tmp_path):
    results, out = tmp_path / "smoke.jsonl", tmp_path / "report"
    status, stdout, err = run(
        capsys, "run", "--preset", "smoke", "--results", str(results), "--out", str(out), "--no-progress"
    )
    assert status == 0, err
    assert stdout.splitlines() == [f"6 record(s) written to {results} (ok 6)", f"report written to {out}"]
    assert (out / "report.md").is_file()
