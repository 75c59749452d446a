"""Timing primitives, memory trackers, the load tracker and the environment block."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
import torch

from adapterdrop.measure import timing
from adapterdrop.measure.env import collect_env
from adapterdrop.measure.load import LoadTracker
from adapterdrop.measure.memory import (
    HostPeak,
    MemoryParts,
    MemoryTracker,
    optimizer_state_bytes,
    tensor_bytes,
)


def test_samples_are_torch_measurements_merged_over_rounds():
    samples = timing.interleave(
        {"a": lambda: time.sleep(0.001)}, {"a": 2}, 1, timing.TimingConfig(rounds=3), on_error=print
    )
    measurement = samples["a"]
    assert len(timing.per_round(measurement)) == 3 and measurement.number_per_run == 1
    assert measurement.median == pytest.approx(sorted(timing.per_round(measurement))[1])
    assert measurement.median >= 0.001


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
    assert per_call.mean * number >= 0.02 * 0.9


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
        timing.TimingConfig(rounds=4),
        on_error=lambda name, exc: errors.setdefault(name, exc),
    )
    assert set(samples) == {"a", "b"}
    assert all(len(m.times) == 4 and min(m.times) > 0 for m in samples.values())
    assert list(errors) == ["bad"]


def test_a_call_that_runs_several_steps_is_timed_per_step():
    config = timing.TimingConfig(rounds=3)
    samples = timing.interleave(
        {"cycle": lambda: time.sleep(0.008), "one": lambda: time.sleep(0.002)},
        {"cycle": 2, "one": 8},
        1,
        config,
        on_error=print,
        steps={"cycle": 4},
    )
    per_step = samples["cycle"].median  # 8 ms per call of 4 steps
    assert 0.002 <= per_step < 0.004 and len(samples["cycle"].times) == 3
    assert samples["one"].median >= 0.002


def test_rounds_are_added_while_asked_up_to_the_limit():
    asked = []

    def more(samples):
        asked.append(len(samples["a"]))
        return len(samples["a"]) < 5

    config = timing.TimingConfig(rounds=3, max_rounds=8)
    samples = timing.interleave({"a": lambda: None}, {"a": 1}, 1, config, on_error=print, more=more)
    assert len(samples["a"].times) == 5 and asked == [3, 4, 5]
    always = timing.interleave({"a": lambda: None}, {"a": 1}, 1, config, print, more=lambda s: True)
    assert len(always["a"].times) == 8  # max_rounds caps it
    budget = timing.TimingConfig(rounds=2, max_rounds=50, time_budget_s=0.05)
    slow = timing.interleave({"a": lambda: time.sleep(0.02)}, {"a": 1}, 1, budget, print, lambda s: True)
    assert 2 <= len(slow["a"].times) < 10  # the time budget stops it long before 50 rounds


def test_timing_config_rejects_bad_values():
    with pytest.raises(ValueError, match="rounds"):
        timing.TimingConfig(rounds=0)
    with pytest.raises(ValueError, match="min_sample_time_s"):
        timing.TimingConfig(min_sample_time_s=0)
    with pytest.raises(ValueError, match="max_rounds"):
        timing.TimingConfig(rounds=5, max_rounds=3)


def test_host_peak_sees_a_large_allocation():
    with HostPeak() as host:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        time.sleep(0.02)
        del block
    assert host.growth >= 48 * 2**20


def test_memory_tracker_on_cpu_sees_memory_that_is_reused():
    def step():  # 32 MiB, live for 20 ms (a sampled reading sees what lives longer than its interval)
        block = torch.ones(32 * 2**20 // 4)
        time.sleep(0.02)
        del block  # freed: after the first step the same memory is reused

    step()
    with MemoryTracker(torch.device("cpu")) as tracker:
        step()
        step()
    if tracker.kind == "host_allocated_peak":  # glibc: live bytes, not resident pages
        assert 24 * 2**20 <= tracker.transient <= 96 * 2**20
    else:
        assert tracker.kind == "host_rss_growth"


def test_tensor_bytes_counts_shared_storage_once_and_optimizer_state():
    weight = torch.nn.Parameter(torch.zeros(10, 10))
    assert tensor_bytes([weight, weight, weight.view(100)]) == 400
    optimizer = torch.optim.AdamW([weight], foreach=True)
    assert optimizer_state_bytes(optimizer) == 0
    weight.grad = torch.ones_like(weight)
    optimizer.step()
    assert optimizer_state_bytes(optimizer) == 2 * 400 + 4  # exp_avg, exp_avg_sq, step (fp32 scalar)


def test_memory_parts_add_up_and_hold_the_gradients():
    parts = MemoryParts.from_step(params=100, optimizer=200, grads=50, transient=80, kind="k")
    assert (parts.activations, parts.total) == (30, 380)
    sampled_low = MemoryParts.from_step(params=100, optimizer=200, grads=50, transient=10, kind="k")
    assert sampled_low.activations == 0 and sampled_low.total == 350
    fields = parts.fields()
    parts_sum = sum(
        fields[f"memory_{name}_bytes"] for name in ("params", "optimizer", "grads", "activations")
    )
    assert parts_sum == fields["peak_memory_bytes"]


def test_load_tracker_sees_another_busy_process():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        with LoadTracker() as loaded:
            time.sleep(0.6)
    finally:
        busy.kill()
        busy.wait()
    assert loaded.fields()["other_cpu_cores"] >= 0.5 and loaded.fields()["loaded"]
    for key in ("loadavg_1m_before", "loadavg_1m_after", "cpu_pressure_avg10_after", "steal_cpu_cores"):
        assert key in loaded.fields()


def test_env_block():
    env = collect_env("cpu", threads=3)
    assert env["threads"] == 3
    assert env["torch"] == torch.__version__
    assert env["device"] == "cpu" and env["device_name"] == env["cpu"] and env["cpu"]
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", env["git_commit"])
    for key in ("python", "transformers", "hostname", "git_dirty", "matmul_precision"):
        assert key in env


def test_commit_without_git_comes_from_the_environment(monkeypatch):
    from adapterdrop.measure import env as env_module

    monkeypatch.setattr(env_module, "_git", lambda *args: None)
    monkeypatch.setenv(env_module.COMMIT_VARIABLE, "abc123")
    env_module.git_state.cache_clear()
    try:
        assert env_module.git_state() == ("abc123", None)
    finally:
        env_module.git_state.cache_clear()


def test_a_sample_times_every_call_it_runs():
    calls = []
    measurement = timing.sample(lambda: calls.append(1), num_threads=1, number=3)
    assert len(calls) == 3 and measurement.number_per_run == 3  # no untimed warm-up call hidden inside
    timing.sample(lambda: calls.append(1), num_threads=1, number=3, warmup_calls=2)
    assert len(calls) == 3 + 5  # asked-for warm-up calls, and only those
    warmed = []
    timing.sample(lambda: calls.append(1), 1, 3, warmup_calls=1, warm=lambda: warmed.append(1))
    assert len(calls) == 8 + 3 and warmed == [1]  # the warm-up runs its own callable (one step of a cycle)


def test_calls_per_sample_from_seconds_already_measured():
    assert timing.calls_per_sample(0.03, 0.1) == 4
    assert timing.calls_per_sample(0.2, 0.1) == 1
    assert timing.calls_per_sample(0.0, 0.1) >= 1
