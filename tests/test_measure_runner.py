"""One comparison group measured interleaved: statuses, ratios, optimizer, precision, failure isolation."""

from __future__ import annotations

import pytest
import torch

from adapterdrop.measure import runner
from adapterdrop.scenario import Scenario


def group(phase: str, variants: list[str], **overrides) -> list[Scenario]:
    fields = dict(
        model="tiny", phase=phase, batch_size=2, seq_len=8, threads=1, comparison="t", baseline=variants[0]
    )
    fields.update(overrides)
    return [Scenario(variant=v, **fields) for v in variants]


def test_train_group(fast_timing):
    records = runner.measure_group(
        group("train", ["full", "adapter", "parallel:tasks=2"]),
        fast_timing,
        baseline="full",
        env={"marker": 1},
    )
    full, adapter, parallel = records
    assert [r.variant for r in records] == ["full", "adapter", "parallel:tasks=2"]
    assert full.status == adapter.status == "ok"
    assert parallel.status == "skipped" and "inference-only" in parallel.error
    for record in (full, adapter):
        assert len(record.time_samples_s) == fast_timing.rounds
        assert record.time_median_s == sorted(record.time_samples_s)[1]
        assert record.throughput_samples_s == pytest.approx(2 / record.time_median_s)
        assert record.throughput_tokens_s == pytest.approx(16 / record.time_median_s)
        assert record.optimizer == "AdamW(fused)"
        assert record.memory_kind in ("host_allocated_peak", "host_rss_growth")
        assert record.peak_memory_bytes > 0
        assert record.timing["calls_per_sample"] >= 1
        assert record.env == {"marker": 1}
        assert record.key == record.scenario.key and record.group == full.group
    assert adapter.speedup == pytest.approx(full.time_median_s / adapter.time_median_s)
    assert 0 < adapter.params_trainable < full.params_trainable
    assert adapter.params_total > full.params_trainable  # the shared frozen encoder counts for the adapter
    assert adapter.variant_info["adapter_layers"] == [0, 1, 2, 3]


def test_robust_adapterdrop_records_mean_flops(fast_timing):
    records = runner.measure_group(
        group("train", ["adapter", "adapterdrop:robust", "adapterdrop:n=3"]), fast_timing, baseline="adapter"
    )
    adapter, robust, dropped = (r.flops_step for r in records)
    assert dropped < robust < adapter  # n drawn from 0..3 per step: between no drop and the largest drop


def test_failures_stay_in_their_variant(fast_timing, monkeypatch):
    build = runner.build_variant

    def fake_build(spec, config, **kwargs):
        if spec == "adapter":
            raise RuntimeError("something broke\nwith detail")
        if spec == "adapterdrop:n=2":
            raise torch.OutOfMemoryError("CUDA out of memory")
        return build(spec, config, **kwargs)

    monkeypatch.setattr(runner, "build_variant", fake_build)
    records = runner.measure_group(
        group("infer", ["full", "adapter", "adapterdrop:n=2", "adapterdrop:n=1"]),
        fast_timing,
        baseline="full",
    )
    statuses = {r.variant: (r.status, r.error) for r in records}
    assert len(runner.one_line(RuntimeError("x" * 1000))) == runner.MAX_ERROR_CHARS
    assert statuses["adapter"] == ("error", "RuntimeError: something broke")
    assert statuses["adapterdrop:n=2"] == ("oom", "OutOfMemoryError: CUDA out of memory")
    assert statuses["full"][0] == statuses["adapterdrop:n=1"][0] == "ok"
    assert records[-1].speedup is not None


def test_no_speedup_without_a_baseline(fast_timing):
    records = runner.measure_group(group("infer", ["full", "adapter"]), fast_timing, baseline=None)
    assert all(r.status == "ok" and r.speedup is None for r in records)


@pytest.mark.parametrize(("phase", "precision"), [("train", "autocast"), ("infer", "native")])
def test_bf16(fast_timing, phase, precision):
    records = runner.measure_group(
        group(phase, ["full", "adapter"], dtype="bf16", precision=precision), fast_timing, baseline="full"
    )
    assert [r.status for r in records] == ["ok", "ok"], [r.error for r in records]
    assert all(r.flops_step > 0 for r in records)


def test_group_must_share_everything_but_the_variant(fast_timing):
    scenarios = group("infer", ["full"]) + group("infer", ["adapter"], batch_size=4)
    with pytest.raises(ValueError, match="differ only in their variant"):
        runner.measure_group(scenarios, fast_timing)
