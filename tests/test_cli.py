"""The command line: subcommands, tables, and one-line errors with a non-zero exit status."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import REPO

from adapterdrop import plan
from adapterdrop.backends import list_variants
from adapterdrop.cli import main
from adapterdrop.measure import load, runner
from adapterdrop.measure.timing import TimingConfig
from adapterdrop.results import append_records
from adapterdrop.scenario import Record, Scenario

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
    table, _, notes = out.strip().partition("\n\n")
    header, rule, *rows = table.splitlines()
    assert header.split()[:4] == ["variant", "phase", "device", "status"]
    assert [row.split()[:4] for row in rows] == [
        ["full", "train", "cpu", "ok"],
        ["adapter", "train", "cpu", "ok"],
    ]
    # two rounds are too few to state a result: the verdict says noisy and a note under the table says why
    # (the baseline row may be noisy too on a busy machine, so the adapter's note need not be the first)
    verdict = re.search(r"noisy \[(\d+)\]$", rows[1].rstrip())
    assert verdict, rows[1]
    assert f"[{verdict.group(1)}] adapter: " in notes.splitlines()[int(verdict.group(1)) - 1]
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
    assert re.fullmatch(
        rf"2 record\(s\) written to {results} \(ok 2; \d noisy, \d measured under load\)", out.strip()
    )
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
        (["measure", "--variant", "fancy"], 2, "unknown variant 'fancy'"),
        (
            ["measure", "--variant", "adapterdrop:n=9", "--model", "tiny"],
            2,
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
    written, reported, blank, title, *headline = stdout.splitlines()
    assert re.fullmatch(
        rf"6 record\(s\) written to {results} \(ok 6; \d noisy, \d measured under load\)", written
    )
    assert reported == f"report written to {out}" and blank == ""
    assert title.startswith("The paper's figures and the measured ones")  # the headline (issue 18)
    assert f"Report: {out / 'report.md'}" in headline
    assert (out / "report.md").is_file()


# ------------------------------------------------------------------------------- the front door (issue 9)


def git(*argv: str, cwd) -> str:
    return subprocess.run(["git", *argv], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_main_command_leaves_a_clones_tracked_files_untouched(capsys, tmp_path, monkeypatch):
    """`adapterdrop run` (the README's main command) in a fresh clone writes only under the ignored
    results/ folder. The quick preset is swapped for the smoke grid under the same name, so the command,
    its defaults and its paths are the real ones and the test takes seconds."""
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(REPO), str(clone), cwd=tmp_path)
    real_load = plan.load_preset

    def smoke_as_quick(name):
        if name != "quick":
            return real_load(name)
        return dataclasses.replace(
            real_load("smoke"),
            name="quick",
            threads=1,
            timing=TimingConfig(rounds=2, min_sample_time_s=0.005, warmup_steps=0),
        )

    monkeypatch.setattr(plan, "load_preset", smoke_as_quick)
    monkeypatch.chdir(clone)
    status, out, err = run(capsys, "run", "--no-progress")
    assert status == 0, err
    assert "report written to results/quick" in out.splitlines()
    assert "Report: results/quick/report.md" in out.splitlines()
    assert (clone / "results/quick.jsonl").is_file() and (clone / "results/quick/report.md").is_file()
    assert git("status", "--porcelain", "--untracked-files=all", cwd=clone) == ""


def long_preset(tmp_path):
    path = tmp_path / "long.toml"
    path.write_text(
        'models = ["tiny"]\n[[comparison]]\nname = "c"\nbaseline = "full"\nvariants = []\nseq_lens = [256]\n'
    )
    return path


@pytest.mark.parametrize(
    "argv",
    [
        ["measure", "--variant", "full", "--model", "tiny", "--seq-len", "256"],
        ["sweep", "--variant", "full", "--model", "tiny", "--seq-len", "256"],
        ["sweep", "--preset", "{preset}"],
        ["run", "--preset", "{preset}"],
        ["sweep", "--preset", "smoke", "--model", "{config}"],
    ],
    ids=["measure", "sweep-flags", "sweep-preset", "run", "model-override"],
)
def test_a_sequence_longer_than_the_models_positions_stops_before_measuring(
    capsys, tmp_path, monkeypatch, argv
):
    short = tmp_path / "short.json"  # tiny with 8 positions: the smoke preset's 16 tokens do not fit
    short.write_text(
        json.dumps(
            {
                "model_type": "bert",
                "max_position_embeddings": 8,
                "hidden_size": 32,
                "num_attention_heads": 2,
                "num_hidden_layers": 2,
                "intermediate_size": 64,
            }
        )
    )
    monkeypatch.setattr(runner, "prepare_step", lambda *a: pytest.fail("measured"))
    monkeypatch.chdir(tmp_path)
    argv = [a.format(preset=long_preset(tmp_path), config=short) for a in argv]
    status, out, err = run(capsys, *argv, "--results", str(tmp_path / "r.jsonl"))
    assert status == 1 and out == ""
    assert re.fullmatch(
        r"adapterdrop: error: (preset \S+: )?sequence length (256|16) does not fit \S+: "
        r"it has (128|8) positions\n",
        err,
    )
    assert not (tmp_path / "r.jsonl").exists()


def failing(variant: str, exc: BaseException):
    """A runner.prepare_step that raises ``exc`` for ``variant`` and prepares every other one."""
    prepare = runner.prepare_step

    def fake(scenario, context):
        if scenario.variant == variant:
            raise exc
        return prepare(scenario, context)

    return fake


@pytest.mark.parametrize("command", ["measure", "sweep", "run"])
def test_a_scenario_that_ends_in_error_fails_and_says_how_many(capsys, tmp_path, monkeypatch, command):
    monkeypatch.setattr(runner, "prepare_step", failing("adapter", RuntimeError("planted failure")))
    results = tmp_path / "r.jsonl"
    if command == "run":  # the smoke grid, with run's machine options
        argv = [
            "run",
            "--preset",
            "smoke",
            "--threads",
            "1",
            "--rounds",
            "2",
            "--min-sample-time",
            "0.005",
            "--out",
            str(tmp_path / "report"),
            "--no-progress",
        ]
    elif command == "sweep":
        argv = [
            "sweep",
            "--variant",
            "full",
            "--variant",
            "adapter",
            "--phase",
            "infer",
            "--no-progress",
            *TINY,
        ]
    else:
        argv = ["measure", "--variant", "adapter", "--baseline", "full", *TINY]
    status, out, err = run(capsys, *argv, "--results", str(results))
    assert status == 1
    (error,) = [line for line in err.splitlines() if line.startswith("adapterdrop: error: ")]
    assert error.startswith("adapterdrop: error: 1 of ") and "scenario(s) ended in error" in error
    assert "RuntimeError: planted failure" in error and err.endswith(error + "\n")
    stored = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["status"] for r in stored].count("error") == 1
    if command != "measure":
        assert "error 1" in out.splitlines()[0]
    if command == "run":
        assert (tmp_path / "report" / "report.md").is_file()  # the report is still written
        assert {r["threads"] for r in stored} == {1}
        assert {r["timing"]["rounds"] for r in stored if r["status"] == "ok"} == {2}


@pytest.mark.parametrize("command", ["measure", "sweep"])
def test_oom_is_an_outcome_not_a_failure(capsys, tmp_path, monkeypatch, command):
    monkeypatch.setattr(runner, "prepare_step", failing("adapter", torch.OutOfMemoryError("planted")))
    if command == "sweep":
        argv = [
            "sweep",
            "--variant",
            "full",
            "--variant",
            "adapter",
            "--phase",
            "infer",
            "--no-progress",
            *TINY,
        ]
    else:
        argv = ["measure", "--variant", "adapter", "--baseline", "full", *TINY]
    status, out, err = run(capsys, *argv, "--results", str(tmp_path / "r.jsonl"))
    assert status == 0, err
    assert ("(ok 1, oom 1;" if command == "sweep" else "oom: OutOfMemoryError: planted") in out


@pytest.mark.parametrize("command", ["measure", "sweep"])
def test_an_unwritable_results_file_is_an_error_before_measuring(capsys, tmp_path, monkeypatch, command):
    (tmp_path / "file").write_text("")
    results = tmp_path / "file" / "r.jsonl"  # a folder that is a file: unwritable even for root
    monkeypatch.setattr(
        runner, "prepare_step", lambda *a: pytest.fail("measured before the path was checked")
    )
    status, out, err = run(capsys, command, "--variant", "full", "--results", str(results), *TINY)
    assert status == 1 and out == ""
    assert err == f"adapterdrop: error: {results}: cannot write results file (not a directory)\n"


def test_a_filesystem_error_is_a_plain_sentence(capsys, tmp_path):
    results = tmp_path / "r.jsonl"
    append_records(results, [tiny_record()])
    (tmp_path / "file").write_text("")
    status, _, err = run(capsys, "report", str(results), "--out", str(tmp_path / "file" / "out"))
    assert status == 1
    assert err == f"adapterdrop: error: {tmp_path / 'file' / 'out'}: not a directory\n"


def tiny_record(variant: str = "full") -> Record:
    scenario = Scenario(
        model="tiny", variant=variant, phase="infer", batch_size=2, seq_len=8, baseline="full"
    )
    return Record.for_scenario(
        scenario,
        "ok",
        run_id="r1",
        created_at="2026-01-01T00:00:00+00:00",
        time_median_s=0.01,
        time_samples_s=[0.01, 0.011, 0.009],
        speedup=1.0,
    )


@pytest.mark.parametrize("content", ["", "\n", '{"schema": 2, "mod'], ids=["empty", "blank", "torn-only"])
def test_report_on_a_file_without_records_fails_in_one_line(capsys, tmp_path, content):
    path = tmp_path / "r.jsonl"
    path.write_text(content)
    status, out, err = run(capsys, "report", str(path), "--out", str(tmp_path / "out"))
    assert status == 1 and out == ""
    error = [line for line in err.splitlines() if line.startswith("adapterdrop: error: ")]
    assert len(error) == 1 and "no records" in error[0], err
    assert "Traceback" not in err and "Warning" not in err


def test_a_torn_last_line_is_one_plain_warning_once(tmp_path):
    """Through the console entry point (pytest would capture the warnings): the file, given twice, is read
    twice, and the torn line is reported once, as one plain line."""
    path = tmp_path / "r.jsonl"
    append_records(path, [tiny_record(), tiny_record("adapter")])
    with open(path, "a") as handle:
        handle.write('{"schema": 2, "model": "ti')  # a write killed half-way
    done = subprocess.run(
        [sys.executable, "-m", "adapterdrop", "report", str(path), str(path), "--out", str(tmp_path / "out")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    torn = [line for line in done.stderr.splitlines() if "incomplete last line" in line]
    assert torn == [
        f"adapterdrop: warning: {path}:3: ignoring an incomplete last line"
        " (a write cut off by a kill; the next append removes it)"
    ]
    assert "Warning" not in done.stderr


def help_text(capsys, *command: str) -> str:
    _, out, _ = run(capsys, *command, "--help")
    return " ".join(out.split())  # argparse wraps lines; compare words


def test_help_states_the_defaults_and_where_results_go(capsys):
    for command in ("measure", "sweep", "run"):
        assert "config.json" in help_text(capsys, command) and "model folder" in help_text(capsys, command)
    sweep = help_text(capsys, "sweep")
    assert "(default: train and infer)" in sweep
    assert "repeatable (default 8)" in sweep and "repeatable (default 128)" in sweep
    assert "results/cli.jsonl for a sweep from --variant flags" in sweep
    run_help = help_text(capsys, "run")
    for flag in ("--device", "--threads", "--dtype", "--precision", "--rounds", "--model"):
        assert f"{flag} " in run_help
    assert "into results/PRESET.jsonl, then write its report into results/PRESET/" in run_help


def test_a_hugging_face_model_folder_is_a_model(capsys, tmp_path):
    folder = tmp_path / "bert-like"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {  # what save_pretrained writes, on tiny's geometry
                "architectures": ["BertForMaskedLM"],
                "model_type": "bert",
                "hidden_size": 32,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "intermediate_size": 64,
                "vocab_size": 128,
                "max_position_embeddings": 64,
                "hidden_act": "gelu",
                "layer_norm_eps": 1e-12,
                "pad_token_id": 0,
                "type_vocab_size": 2,
                "position_embedding_type": "absolute",
                "transformers_version": "4.6.0.dev0",
                "use_cache": True,
                "gradient_checkpointing": False,
                "torch_dtype": "float32",
                "_name_or_path": "bert-like",
            }
        )
    )
    (folder / "model.safetensors").write_bytes(b"not read")
    argv = TINY[2:]  # without --model tiny
    status, out, err = run(
        capsys, "measure", "--variant", "adapterdrop:n=1", "--model", str(folder), "--json", *argv
    )
    assert status == 0, err
    record = json.loads(out)
    assert record["status"] == "ok" and record["model"] == str(folder)
    status, _, err = run(capsys, "measure", "--variant", "full", "--model", str(tmp_path), *argv)
    assert status == 1 and err == f"adapterdrop: error: model directory '{tmp_path}' holds no config.json\n"


def test_measure_warns_and_the_sweep_counts_records_measured_under_load(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(load, "LOADED_CORES", 0.0)  # any other process counts: every group is loaded
    status, _, err = run(capsys, "measure", "--variant", "adapter", "--baseline", "full", *TINY)
    assert status == 0
    assert err.startswith("adapterdrop: warning: infer b=2 s=8 cpu: machine loaded: other processes used ")
    results = tmp_path / "r.jsonl"
    argv = ["sweep", "--variant", "full", "--variant", "adapter", "--phase", "infer", *TINY]
    status, out, err = run(capsys, *argv, "--results", str(results), "--no-progress")
    assert status == 0 and "machine loaded" in err
    assert out.strip() == f"2 record(s) written to {results} (ok 2; 2 noisy, 2 measured under load)"


def test_the_measure_table_prints_the_interval_and_why_a_record_is_noisy():
    from adapterdrop.commands.measure import format_table

    common = dict(model="tiny", phase="infer", batch_size=2, seq_len=8, baseline="full")
    full = Record.for_scenario(Scenario(variant="full", **common), "ok", time_median_s=0.01, speedup=1.0)
    adapter = Record.for_scenario(
        Scenario(variant="adapter", **common),
        "ok",
        time_median_s=0.011,
        speedup=0.909,
        speedup_ci=[0.85, 0.97],
        noisy=True,
        noise=["adapter IQR is 14% of its median (> 10%)"],
    )
    full.noisy = False
    table = format_table([full, adapter])
    assert "[0.850, 0.970]" in table and "noisy [1]" in table
    assert table.splitlines()[-1] == "[1] adapter: adapter IQR is 14% of its median (> 10%)"
    assert table.splitlines()[2].rstrip().endswith("result")
