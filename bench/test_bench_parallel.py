"""Parallel multi-task inference: speedup of sharing the lowest K layers, N tasks, against two ideals.

For N tasks with K of L layers without adapters, the K layers run once instead of N times, so the ideal
time ratio against K = 0 is N·L / (K + N·(L − K)) if every layer costs the same (the layer-count ideal).
The record's FLOPs ideal is higher: layer K's own attention and feed-forward also run once (its adapter
sits at its end), and it counts only arithmetic. A measured speedup must lie between the two, each with
the tolerance: below the layer-count ideal the sharing is lost somewhere; above the FLOPs ideal the
measurement is wrong. Where a step is launch-bound (small batches on a GPU) the shared layers cost
little and the speedup falls short; the bench therefore runs at batch 8 by default.
"""

from __future__ import annotations

import pytest
from conftest import measure

from adapterdrop.models.presets import model_config
from adapterdrop.variants.multitask import layer_count_ideal


@pytest.mark.parametrize("tasks", [2, 4, 8, 16])
def test_parallel_shared_layers(benchmark, settings, tasks):
    config = model_config(settings.model)
    layers = config.num_hidden_layers
    baseline = f"parallel:tasks={tasks}"
    variants = [f"parallel:tasks={tasks},n={k}" for k in range(1, layers)]
    records = measure(benchmark, settings, "infer", baseline, variants)
    outside = []
    for record in records[1:]:
        low = layer_count_ideal(tasks, record.variant_info["dropped_layers"], layers)
        benchmark.extra_info[record.variant]["layer_count_ideal"] = low
        band = (low * (1 - settings.tolerance), record.ideal_speedup * (1 + settings.tolerance))
        if not band[0] <= record.speedup <= band[1]:
            outside.append(f"{record.variant}: {record.speedup:.3f} not in [{band[0]:.3f}, {band[1]:.3f}]")
    assert not outside, outside


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
