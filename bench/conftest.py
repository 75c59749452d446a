"""Settings of the bench suites, from the environment so that ``nox -s bench`` runs anywhere.

``ADAPTERDROP_BENCH_DEVICE`` (default ``cuda`` when one is visible, else ``cpu``),
``ADAPTERDROP_BENCH_MODEL`` (default ``bert-base`` on a GPU, ``bert-small`` on the CPU, the toolkit's CPU
default), ``ADAPTERDROP_BENCH_BATCH`` (default 8), ``ADAPTERDROP_BENCH_SEQ`` (128),
``ADAPTERDROP_BENCH_ROUNDS`` (5 interleaved rounds, then more, up to ``ADAPTERDROP_BENCH_MAX_ROUNDS``,
default 8x the rounds, and 120 s of timing per group, while a speedup's 95% interval reaches further than
2% from it).

The suites take the number of dropped layers from the model: the paper drops 5 of 12 layers, so a model of
L layers drops round(5·L/12), at least 1 (``settings.dropped``: 2 on the 4-layer ``tiny``, 10 on 24 layers).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
import torch

from adapterdrop.measure.env import collect_env
from adapterdrop.measure.runner import measure_group
from adapterdrop.measure.timing import TimingConfig
from adapterdrop.models.presets import model_config
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

    @property
    def layers(self) -> int:
        """Transformer layers of the model."""
        return model_config(self.model).num_hidden_layers

    @property
    def dropped(self) -> int:
        """Layers without adapters in AdapterDrop comparisons: the paper's 5 of 12, scaled to the model."""
        return max(1, round(5 * self.layers / 12))

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
    device = env("ADAPTERDROP_BENCH_DEVICE", "cuda" if torch.cuda.is_available() else "cpu")
    rounds = int(env("ADAPTERDROP_BENCH_ROUNDS", "5"))
    return BenchSettings(
        model=env("ADAPTERDROP_BENCH_MODEL", "bert-small" if device == "cpu" else "bert-base"),
        device=device,
        batch_size=int(env("ADAPTERDROP_BENCH_BATCH", "8")),
        seq_len=int(env("ADAPTERDROP_BENCH_SEQ", "128")),
        threads=torch.get_num_threads(),
        timing=TimingConfig(
            rounds=rounds,
            max_rounds=int(env("ADAPTERDROP_BENCH_MAX_ROUNDS", str(8 * rounds))),
            ci_target=0.02,
            min_sample_time_s=0.05,
        ),
    )


def measure(
    benchmark, settings: BenchSettings, phase: str, baseline: str, variants: list[str]
) -> list[Record]:
    """Run one interleaved group under pytest-benchmark (one round: its time is the whole measurement)
    and put each variant's median, speedup and its 95% interval, FLOPs ideal and efficiency into the
    benchmark's extra_info."""
    records = benchmark.pedantic(settings.group, args=(phase, baseline, variants), rounds=1, iterations=1)
    for record in records:
        benchmark.extra_info[record.variant] = {
            "time_median_s": record.time_median_s,
            "speedup": record.speedup,
            "speedup_ci": record.speedup_ci,
            "ideal_speedup": record.ideal_speedup,
            "efficiency": record.efficiency,
        }
    benchmark.extra_info["device"] = records[0].env.get("device_name")
    return records
