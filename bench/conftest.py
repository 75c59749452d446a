"""Settings of the bench suites, from the environment so that ``nox -s bench`` runs anywhere.

``ADAPTERDROP_BENCH_MODEL`` (default ``bert-base``), ``ADAPTERDROP_BENCH_DEVICE`` (default ``cuda`` when
one is visible, else ``cpu``), ``ADAPTERDROP_BENCH_BATCH`` (default 8), ``ADAPTERDROP_BENCH_SEQ`` (128),
``ADAPTERDROP_BENCH_ROUNDS`` (5) and ``ADAPTERDROP_BENCH_TOLERANCE`` (0.25: the relative margin around
the band of ideals a shared-layer speedup must fall in, see ``test_bench_parallel.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
import torch

from adapterdrop.measure.env import collect_env
from adapterdrop.measure.runner import measure_group
from adapterdrop.measure.timing import TimingConfig
from adapterdrop.plan import expand_groups, preset_from_flags, with_overrides
from adapterdrop.scenario import Record


@dataclass(frozen=True)
class BenchSettings:
    model: str
    device: str
    batch_size: int
    seq_len: int
    threads: int
    timing: TimingConfig
    tolerance: float

    def group(self, phase: str, baseline: str, variants: list[str]) -> list[Record]:
        """Measure ``baseline`` and ``variants`` interleaved in this process; records in that order."""
        preset = with_overrides(
            preset_from_flags(
                variants,
                baseline=baseline,
                phases=[phase],
                batch_sizes=[self.batch_size],
                seq_lens=[self.seq_len],
                comparison="bench",
            ),
            models=[self.model],
            devices=[self.device],
            threads=self.threads,
            timing=self.timing,
        )
        (group,) = expand_groups(preset)
        env = collect_env(group.baseline.device, self.threads)
        records = measure_group(group.scenarios, self.timing, baseline=group.baseline.variant, env=env)
        failed = [f"{r.variant}: {r.status} {r.error}" for r in records if r.status != "ok"]
        assert not failed, failed
        return records


@pytest.fixture(scope="session")
def settings() -> BenchSettings:
    env = os.environ.get
    return BenchSettings(
        model=env("ADAPTERDROP_BENCH_MODEL", "bert-base"),
        device=env("ADAPTERDROP_BENCH_DEVICE", "cuda" if torch.cuda.is_available() else "cpu"),
        batch_size=int(env("ADAPTERDROP_BENCH_BATCH", "8")),
        seq_len=int(env("ADAPTERDROP_BENCH_SEQ", "128")),
        threads=torch.get_num_threads(),
        timing=TimingConfig(rounds=int(env("ADAPTERDROP_BENCH_ROUNDS", "5")), min_sample_time_s=0.05),
        tolerance=float(env("ADAPTERDROP_BENCH_TOLERANCE", "0.25")),
    )


def measure(
    benchmark, settings: BenchSettings, phase: str, baseline: str, variants: list[str]
) -> list[Record]:
    """Run one interleaved group under pytest-benchmark (one round: its time is the whole measurement)
    and put each variant's median, speedup, FLOPs ideal and efficiency into the benchmark's extra_info."""
    records = benchmark.pedantic(settings.group, args=(phase, baseline, variants), rounds=1, iterations=1)
    for record in records:
        benchmark.extra_info[record.variant] = {
            "time_median_s": record.time_median_s,
            "speedup": record.speedup,
            "ideal_speedup": record.ideal_speedup,
            "efficiency": record.efficiency,
        }
    benchmark.extra_info["device"] = records[0].env.get("device_name")
    return records
