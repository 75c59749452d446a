"""bench/tools/serving.py: bad input is one line and exit 2 (nothing is timed here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parent.parent / "bench" / "tools" / "serving.py"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "no-such-model"], "unknown model preset 'no-such-model'"),
        (["--adapters", "0"], "must be positive"),
        (["--mixes", "popular"], "invalid choice: 'popular'"),
        (["--model", "llama-tiny", "--first-layer", "9"], "--first-layer 9 leaves no layer of 4"),
        (["--device", "gpu"], "--device 'gpu'"),
    ],
)
def test_bad_input_is_one_line(args: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("adapterdrop: error: ")
    assert message in done.stderr
