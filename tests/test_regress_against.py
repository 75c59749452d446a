"""``adapterdrop regress --against HEAD`` end to end with a slowdown planted in the shared layer runner
(``runner:F``), which no ratio can see. It starts 8 processes (each imports torch), so it runs only when
``ADAPTERDROP_SLOW_TESTS=1``; the calibration campaign (``nox -s regress-calibrate``) measures the same
path repeatedly."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    os.environ.get("ADAPTERDROP_SLOW_TESTS") != "1", reason="starts 8 processes: set ADAPTERDROP_SLOW_TESTS=1"
)

ONE_SCENARIO = """
description = "one tiny inference scenario"
models = ["tiny"]
threads = 1

[[comparison]]
name = "inference"
phases = ["infer"]
baseline = "full"
variants = []
batch_sizes = [8]
seq_lens = [32]
"""


def test_a_slower_layer_runner_fails_against_head(tmp_path):
    preset = tmp_path / "one.toml"
    preset.write_text(ONE_SCENARIO)
    env = {**os.environ, "ADAPTERDROP_PLANT": "runner:3"}  # every layer takes about 4x as long in B
    args = ["--against", "HEAD", "--preset", str(preset), "--processes", "4", "--out", str(tmp_path / "out")]
    done = subprocess.run(
        [sys.executable, "-m", "adapterdrop", "regress", *args], env=env, capture_output=True, text=True
    )
    assert done.returncode == 1, done.stdout + done.stderr
    (row,) = json.loads((tmp_path / "out" / "against.json").read_text())["rows"]
    assert row["verdict"] == "regression" and row["change"] > 1.0
