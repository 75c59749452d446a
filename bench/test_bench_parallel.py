"""Parallel multi-task inference: speedup of sharing the lowest K layers, N tasks (criterion in
``criteria.py``: each run's own 95% interval must show at least half the layer-count ideal's gain), and
one pass against N separate models.

Where a step is launch-bound (small batches on a GPU) the shared layers cost little and the speedup falls
short; the bench therefore runs at batch 8 by default.
"""

from __future__ import annotations

import pytest
from conftest import measure
from criteria import sharing_floor, sharing_violations

from adapterdrop.ideals import layer_count_ideal


@pytest.mark.parametrize("tasks", [2, 4, 8, 16])
def test_parallel_shared_layers(benchmark, settings, tasks):
    baseline = f"parallel:tasks={tasks}"
    variants = [f"parallel:tasks={tasks},n={k}" for k in range(1, settings.layers)]
    records = measure(benchmark, settings, "infer", baseline, variants)
    for record in records[1:]:
        dropped = record.variant_info["dropped_layers"]
        benchmark.extra_info[record.variant]["layer_count_ideal"] = layer_count_ideal(
            tasks, dropped, settings.layers
        )
        benchmark.extra_info[record.variant]["sharing_floor"] = sharing_floor(tasks, dropped, settings.layers)
    violations = sharing_violations(records, tasks, settings.layers)
    assert not violations, violations


@pytest.mark.parametrize("tasks", [8])
def test_parallel_vs_separate_models(benchmark, settings, tasks):
    """One pass for N tasks against N single-task models run one after another (the paper's 5 of 12
    layers dropped, scaled to the model)."""
    n = settings.dropped
    measure(
        benchmark,
        settings,
        "infer",
        f"separate:tasks={tasks},n={n}",
        [f"parallel:tasks={tasks},n={n}", f"parallel:tasks={tasks},n={n},impl=loop"],
    )
