"""Timing primitives, memory sampling and the environment block."""

from __future__ import annotations

import re
import time

import pytest
import torch

from adapterdrop.measure import timing
from adapterdrop.measure.env import collect_env
from adapterdrop.measure.memory import HostPeak, peak_memory


def test_median_iqr():
    assert timing.median_iqr([3.0]) == (3.0, 0.0)
    median, iqr = timing.median_iqr([1.0, 2.0, 3.0, 4.0, 100.0])
    assert median == 3.0
    assert iqr == pytest.approx(2.0)  # inclusive quartiles 2 and 4: the outlier does not move them


def test_rotations_put_every_name_first_in_turn():
    assert timing.rotations(["a", "b", "c"], 4) == [
        ["a", "b", "c"],
        ["b", "c", "a"],
        ["c", "a", "b"],
        ["a", "b", "c"],
    ]


def test_timer_runs_with_the_requested_threads():
    seen = []
    with timing.fixed_threads(2):
        timing.sample(lambda: seen.append(torch.get_num_threads()), num_threads=1, number=3)
    assert seen and set(seen) == {1}


def test_calibrate_makes_samples_last_long_enough():
    number = timing.calibrate(lambda: time.sleep(0.002), num_threads=1, min_sample_time_s=0.02)
    assert 3 <= number <= 10  # ceil(0.02 / (0.002 + sleep overhead))
    per_call = timing.sample(lambda: time.sleep(0.002), num_threads=1, number=number)
    assert per_call * number >= 0.02 * 0.9


def test_interleave_samples_every_callable_each_round_and_drops_failures():
    calls = []
    errors = {}

    def make(name):
        def fn():
            calls.append(name)
            if name == "bad" and calls.count("bad") > 3:  # fails in its first timed sample
                raise RuntimeError("boom\nsecond line")

        return fn

    samples = timing.interleave(
        {name: make(name) for name in ("a", "b", "bad")},
        {"a": 1, "b": 2, "bad": 1},
        1,
        rounds=4,
        on_error=lambda name, exc: errors.setdefault(name, exc),
    )
    assert set(samples) == {"a", "b"}
    assert all(len(values) == 4 and min(values) > 0 for values in samples.values())
    assert list(errors) == ["bad"]


def test_timing_config_rejects_bad_values():
    with pytest.raises(ValueError, match="rounds"):
        timing.TimingConfig(rounds=0)
    with pytest.raises(ValueError, match="min_sample_time_s"):
        timing.TimingConfig(min_sample_time_s=0)


def test_host_peak_sees_a_large_allocation():
    with HostPeak() as host:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        time.sleep(0.02)
        del block
    assert host.growth >= 48 * 2**20


def test_peak_memory_on_cpu_sees_memory_that_is_reused():
    def step():
        torch.ones(32 * 2**20 // 4).sum()  # 32 MiB, freed at once: after the first step it is reused

    step()
    growth, kind = peak_memory(step, 2, torch.device("cpu"))
    if kind == "host_allocated_peak":  # glibc: live bytes, not resident pages
        assert 24 * 2**20 <= growth <= 96 * 2**20
    else:
        assert kind == "host_rss_growth"


def test_env_block():
    env = collect_env("cpu", threads=3)
    assert env["threads"] == 3
    assert env["torch"] == torch.__version__
    assert env["device"] == "cpu" and env["device_name"] == env["cpu"] and env["cpu"]
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", env["git_commit"])
    for key in ("python", "transformers", "hostname", "git_dirty"):
        assert key in env
