"""The steady host allocator (ADAPTERDROP_HOST_ALLOCATOR=steady, adapterdrop.measure.allocator): freed
blocks are reused, not handed back to the kernel and faulted in again on the next step; by default nothing
changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from adapterdrop.measure import allocator

CHURN = """
import json, resource, torch
from adapterdrop.measure.allocator import hold_host_allocator
policy = hold_host_allocator()
faults = []
for _ in range(16):  # a 48 MiB block: above glibc's largest dynamic mmap threshold (32 MiB on 64-bit)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = torch.empty(12 * 2**20)
    block.fill_(1.0)
    del block
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"policy": policy, "faults": faults}))
"""

pytestmark = pytest.mark.skipif(
    allocator._glibc() is None or not sys.platform.startswith("linux"), reason="glibc's malloc on Linux only"
)


def _churn(setting: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != allocator.VARIABLE}
    if setting is not None:
        env[allocator.VARIABLE] = setting
    done = subprocess.run([sys.executable, "-c", CHURN], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_steady_allocator_reuses_freed_blocks_that_glibc_would_unmap():
    steady, default = _churn("steady"), _churn(None)
    assert steady["policy"].startswith("steady") and default["policy"].startswith("default")
    pages = 48 * 2**20 // 4096
    assert all(f >= pages // 2 for f in default["faults"]), default  # unmapped and faulted in every time
    assert steady["faults"][-4:] == [0] * 4, steady  # after a few blocks the heap holds room for the next


def test_records_say_which_allocator_they_ran_under(fast_timing):
    from adapterdrop.measure.runner import measure_group
    from adapterdrop.scenario import Scenario

    scenario = Scenario(model="tiny", variant="adapter", phase="infer", batch_size=1, seq_len=8)
    (record,) = measure_group([scenario], fast_timing)
    assert record.timing["host_allocator"] == allocator.hold_host_allocator()
