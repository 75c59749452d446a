"""Parallel multi-task inference: speedup of sharing the lowest K layers, N tasks, against layer counts.

For N tasks with K of L layers without adapters, the layers below the fork run once instead of N times,
so the ideal time ratio against K = 0 is N·L / (K + N·(L − K)) if every layer costs the same. The
record's FLOPs ideal is exact (it also counts the fork layer as shared). Each benchmark times the
interleaved group under pytest-benchmark and stores the speedups in extra_info.
"""

from __future__ import annotations

import pytest
from conftest import measure

from adapterdrop.models.presets import model_config


def layer_count_ideal(tasks: int, dropped: int, layers: int) -> float:
    """N·L / (K + N·(L − K)): time of no sharing over time with K layers run once."""
    return tasks * layers / (dropped + tasks * (layers - dropped))


@pytest.mark.parametrize("tasks", [2, 4, 8, 16])
def test_parallel_shared_layers(benchmark, settings, tasks):
    config = model_config(settings.model)
    layers = config.num_hidden_layers
    baseline = f"parallel:tasks={tasks}"
    variants = [f"parallel:tasks={tasks},n={k}" for k in range(1, layers)]
    records = measure(benchmark, settings, "infer", baseline, variants)
    for record in records[1:]:
        dropped = record.variant_info["dropped_layers"]
        benchmark.extra_info[record.variant]["layer_count_ideal"] = layer_count_ideal(tasks, dropped, layers)
        assert abs(record.efficiency - 1) <= settings.tolerance, (record.variant, record.efficiency)


@pytest.mark.parametrize("tasks", [8])
def test_parallel_vs_separate_models(benchmark, settings, tasks):
    """One pass for N tasks against N single-task models run one after another (5 dropped layers)."""
    measure(
        benchmark,
        settings,
        "infer",
        f"separate:tasks={tasks},n=5",
        [f"parallel:tasks={tasks},n=5", f"parallel:tasks={tasks},n=5,impl=loop"],
    )
