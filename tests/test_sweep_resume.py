"""A sweep killed with SIGKILL part-way loses nothing and a rerun writes no duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from conftest import REPO

from adapterdrop.plan import expand_groups, load_preset
from adapterdrop.results import load_records

PRESET = """
models = ["tiny"]
threads = 1
[timing]
rounds = 3
min_sample_time_s = 0.02
warmup_steps = 1
[[comparison]]
name = "inference"
phases = ["infer"]
baseline = "full"
variants = ["adapter", "adapterdrop:n=2"]
batch_sizes = [1, 2, 3, 4, 5, 6, 7, 8]
seq_lens = [8, 16]
"""


def sweep(preset, results) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "adapterdrop.cli",
            "sweep",
            "--preset",
            str(preset),
            "--results",
            str(results),
            "--no-progress",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_sigkill_then_rerun(tmp_path):
    preset = tmp_path / "kill.toml"
    preset.write_text(PRESET)
    results = tmp_path / "results.jsonl"
    expected = {s.key for g in expand_groups(load_preset(preset)) for s in g.scenarios}
    assert len(expected) == 48

    process = sweep(preset, results)
    deadline = time.monotonic() + 120
    while not (results.exists() and results.stat().st_size) and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = load_records(results)
    assert 0 < len(killed_at) < len(expected)  # killed part-way

    process = sweep(preset, results)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err.decode()
    final = load_records(results)
    keys = [r.key for r in final]
    assert len(keys) == len(set(keys))  # no duplicates
    assert set(keys) == expected  # nothing lost
    assert [r.to_dict() for r in final[: len(killed_at)]] == [r.to_dict() for r in killed_at]
    assert f"{len(expected) - len(killed_at)} record(s) written" in out.decode()
