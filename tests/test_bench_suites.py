"""The bench suites run on a model of any depth: on the 4-layer ``tiny`` model every suite builds and
measures its variants (n derived from the model, never a hard-coded 5). Only a benchmark criterion may
fail there (a 32-wide model is overhead-bound, so sharing a layer or pruning fusion saves less than its
FLOPs, and 3 rounds are noisy), never a variant that does not fit the model."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import REPO


def test_every_bench_suite_runs_on_the_tiny_model():
    env = {
        **os.environ,
        "ADAPTERDROP_BENCH_MODEL": "tiny",
        "ADAPTERDROP_BENCH_ROUNDS": "3",
        "ADAPTERDROP_BENCH_MAX_ROUNDS": "3",
        "ADAPTERDROP_BENCH_BATCH": "2",
        "ADAPTERDROP_BENCH_SEQ": "8",
        "COLUMNS": "1000",  # the short summary keeps each failure's message whole
    }
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "bench", "--benchmark-only", "-q", "-p", "no:cacheprovider", "-rfE"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    assert "passed" in done.stdout.splitlines()[-1], done.stdout[-2000:]
    # a failure may only be a criterion on the measured numbers (a dict of speedups, or the parallel suite's
    # "variant: speedup ..." violations), never a variant that errored ("variant: error ...") or any other
    # exception
    criterion = re.compile(r"AssertionError: (\{'|\['[^']*: speedup )")
    criteria = [line for line in summary if line.startswith("FAILED") and criterion.search(line)]
    assert criteria == summary
