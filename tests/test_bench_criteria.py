"""The parallel bench's criterion (``bench/criteria.py``) must reject no sharing: measured on the ``tiny``
model with a planted defect that copies the batch per task before layer 0 (so no layer is shared), every
variant violates it. The criterion's arithmetic is checked on constructed records."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from adapterdrop.measure.runner import measure_group
from adapterdrop.measure.timing import TimingConfig
from adapterdrop.models.encoder import encode, num_layers, plugins_by_layer
from adapterdrop.plan import expand_groups, preset_from_flags, with_overrides
from adapterdrop.scenario import Record, Scenario
from adapterdrop.variants.multitask import ParallelModel

CRITERIA = Path(__file__).resolve().parent.parent / "bench" / "criteria.py"


def load_criteria():
    spec = importlib.util.spec_from_file_location("bench_criteria", CRITERIA)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


criteria = load_criteria()


def parallel_record(dropped: int, speedup: float, interval: list[float] | None) -> Record:
    scenario = Scenario(
        model="tiny", variant=f"parallel:tasks=8,n={dropped}", phase="infer", batch_size=1, seq_len=8
    )
    return Record.for_scenario(
        scenario, "ok", speedup=speedup, speedup_ci=interval, variant_info={"dropped_layers": dropped}
    )


def test_the_floor_is_half_the_layer_count_ideal_gain():
    # 8 tasks sharing 3 of 4 layers: ideal 32 / (3 + 8) = 2.909, floor 1 + 1.909 / 2
    assert criteria.sharing_floor(8, 3, 4) == pytest.approx(1 + (32 / 11 - 1) / 2)
    baseline = parallel_record(0, 1.0, [1.0, 1.0])
    assert criteria.sharing_violations([baseline, parallel_record(3, 2.8, [2.6, 3.0])], 8, 4) == []
    for interval in ([0.9, 1.1], [1.9, 3.0], None):  # no sharing, too wide to tell, no interval
        assert len(criteria.sharing_violations([baseline, parallel_record(3, 1.0, interval)], 8, 4)) == 1
    # the case the old band (0.75 x layer-count ideal .. 1.25 x FLOPs ideal) let through: 2 tasks sharing
    # 1 of 12 layers (ideal 24 / 23 = 1.043), measured at 1.0, no sharing at all
    no_sharing = parallel_record(1, 1.0, [0.99, 1.01])
    assert 0.75 * 24 / 23 <= 1.0  # inside the old band
    assert criteria.sharing_violations([baseline, no_sharing], 2, 12) != []
    assert criteria.sharing_violations([baseline, parallel_record(1, 1.06, [1.04, 1.08])], 2, 12) == []


def fork_at_layer_zero(self, input_ids, attention_mask=None):
    """The planted defect: the batch is copied per task before layer 0, so every layer runs on N·B rows."""
    for plugin in self.plugins.values():
        plugin.forks = False
    plugins = plugins_by_layer(self.plugins, num_layers(self.base))
    hidden = encode(self.base, input_ids.repeat(self.num_tasks, 1), None, plugins)
    per_task = hidden.view(self.num_tasks, input_ids.shape[0], *hidden.shape[1:])
    return torch.stack([head(h) for head, h in zip(self.heads, per_task, strict=True)])


def test_the_parallel_criterion_rejects_forking_at_layer_zero(monkeypatch):
    monkeypatch.setattr(ParallelModel, "forward", fork_at_layer_zero)
    tasks, layers = 8, 4
    preset = with_overrides(
        preset_from_flags(
            [f"parallel:tasks={tasks},n={k}" for k in range(1, layers)],
            baseline=f"parallel:tasks={tasks}",
            phases=["infer"],
            batch_sizes=[4],
            seq_lens=[32],
        ),
        models=["tiny"],
        threads=1,
    )
    (group,) = expand_groups(preset)
    timing = TimingConfig(rounds=5, min_sample_time_s=0.01, warmup_steps=1)
    records = measure_group(group.scenarios, timing, baseline=group.baseline.variant)
    assert all(record.status == "ok" for record in records)
    violations = criteria.sharing_violations(records, tasks, layers)
    assert len(violations) == layers - 1, violations
