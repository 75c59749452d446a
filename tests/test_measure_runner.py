"""One comparison group measured interleaved: statuses, ratios, optimizer, precision, failure isolation."""

from __future__ import annotations

import pytest
import torch

from adapterdrop.measure import prepare, runner
from adapterdrop.measure.timing import TimingConfig
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


def test_one_run_per_group_with_paired_intervals_and_a_noise_verdict(fast_timing):
    records = runner.measure_group(
        group("infer", ["full", "adapter", "adapterdrop:n=2"]), fast_timing, baseline="full"
    )
    full, adapter, dropped = records
    assert len({r.run_id for r in records}) == 1 and len(full.run_id) == 12
    for record in (adapter, dropped):
        assert record.speedup == full.time_median_s / record.time_median_s  # exactly the ratio of medians
        low, high = record.speedup_ci
        assert low <= high and len(record.time_samples_s) == fast_timing.rounds
        assert record.noisy == bool(record.noise)
    assert full.speedup_ci == [1.0, 1.0]
    assert isinstance(full.load["loaded"], bool) and full.load["cpu_count"] >= 1
    assert full.timing["meets_confidence"] in (True, False)
    assert full.attention_kernel == "aten._scaled_dot_product_flash_attention_for_cpu"


def test_too_few_rounds_give_no_interval_and_a_noisy_record():
    timing = TimingConfig(rounds=2, min_sample_time_s=0.005, warmup_steps=0)
    _, adapter = runner.measure_group(group("infer", ["full", "adapter"]), timing, baseline="full")
    assert adapter.speedup_ci is None and adapter.noisy
    assert any("too few for an interval" in reason for reason in adapter.noise)


def test_robust_adapterdrop_records_the_exact_expectation_over_its_draws(fast_timing):
    specialized = [f"adapterdrop:n={n}" for n in range(4)]  # tiny has 4 layers: robust draws n from 0..3
    records = runner.measure_group(
        group("train", ["adapter", "adapterdrop:robust", *specialized]), fast_timing, baseline="adapter"
    )
    robust = records[1]
    each = [r.flops_step for r in records[2:]]
    assert robust.flops_step == round(sum(each) / len(each))  # each n counted once, equally weighted
    assert robust.variant_info["flops_by_draw"] == {str(n): flops for n, flops in enumerate(each)}
    by_draw = robust.variant_info["memory_by_draw"]
    assert sorted(by_draw) == ["0", "1", "2", "3"]
    assert robust.peak_memory_bytes == max(by_draw.values())  # what a user provisions
    assert robust.peak_memory_expected_bytes == round(sum(by_draw.values()) / 4)
    # timed over cycles that take every draw once: seconds per step, the exact expectation over the draws
    assert robust.timing["steps_per_call"] == 4 and records[0].timing["steps_per_call"] == 1


def test_memory_counts_weights_optimizer_state_and_gradients():
    timing = TimingConfig(rounds=1, min_sample_time_s=0.005, warmup_steps=0)
    full, adapter = runner.measure_group(group("train", ["full", "adapter"]), timing, baseline="full")
    for record in (full, adapter):
        parts = [
            getattr(record, f"memory_{name}_bytes")
            for name in ("params", "optimizer", "grads", "activations")
        ]
        assert sum(parts) == record.peak_memory_bytes
        # AdamW keeps two fp32 moments per trainable parameter (plus a step counter each)
        assert 8 * record.params_trainable <= record.memory_optimizer_bytes <= 12 * record.params_trainable
        assert record.memory_grads_bytes == 4 * record.params_trainable
    assert full.memory_params_bytes == 4 * full.params_total
    assert adapter.memory_optimizer_bytes < full.memory_optimizer_bytes / 10  # the saving adapters bring


@pytest.mark.parametrize("phase", ["train", "infer"])
def test_memory_does_not_depend_on_the_warm_up_steps(phase):
    """bert-small full fine-tuning: with 0 and with 3 warm-up steps the same memory is recorded."""
    totals = []
    for warmup in (0, 3):
        timing = TimingConfig(rounds=1, min_sample_time_s=0.001, warmup_steps=warmup)
        (record,) = runner.measure_group(
            group(phase, ["full"], model="bert-small", batch_size=1, seq_len=8), timing, baseline="full"
        )
        totals.append(record)
    before, after = totals
    for name in ("params", "optimizer", "grads"):
        assert getattr(before, f"memory_{name}_bytes") == getattr(after, f"memory_{name}_bytes")
    assert before.peak_memory_bytes == pytest.approx(after.peak_memory_bytes, rel=0.05)
    if phase == "train":  # weights and AdamW state dominate: ~3x the weights, not just the gradients
        assert before.peak_memory_bytes > 3 * before.memory_params_bytes


def test_failures_stay_in_their_variant(fast_timing, monkeypatch):
    build = prepare.build_variant

    def fake_build(spec, config, **kwargs):
        if spec == "adapter":
            raise RuntimeError("something broke\nwith detail")
        if spec == "adapterdrop:n=2":
            raise torch.OutOfMemoryError("CUDA out of memory")
        return build(spec, config, **kwargs)

    monkeypatch.setattr(prepare, "build_variant", fake_build)
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


def test_every_step_before_timing_is_a_warm_up_or_the_memory_probe(fast_timing, monkeypatch):
    """The harness runs warmup_steps + 1 (the memory probe) steps of a variant before timing, then per round
    sample_warmup_steps untimed steps and the timed calls: nothing hidden calibrates or re-warms."""
    calls: dict[str, int] = {}
    eager = prepare._eager_step

    def counted(scenario, context):
        prepared = eager(scenario, context)
        step = prepared.step

        def step_counted() -> None:
            calls[scenario.variant] = calls.get(scenario.variant, 0) + 1
            step()

        prepared.step = step_counted
        return prepared

    monkeypatch.setattr(prepare, "_eager_step", counted)
    records = runner.measure_group(group("train", ["full", "adapter"]), fast_timing, baseline="full")
    for record in records:
        rounds = record.timing["rounds"]
        timed_calls = rounds * record.timing["calls_per_sample"]
        rewarm = rounds * fast_timing.sample_warmup_steps
        assert fast_timing.sample_warmup_steps == record.timing["sample_warmup_steps"] == 1
        assert calls[record.variant] == fast_timing.warmup_steps + 1 + rewarm + timed_calls


def test_records_say_how_long_their_timed_steps_ran(fast_timing):
    records = runner.measure_group(group("infer", ["full", "adapter"]), fast_timing, baseline="full")
    for record in records:
        timing = record.timing
        expected = sum(record.time_samples_s) * timing["calls_per_sample"] * timing["steps_per_call"]
        assert timing["timed_s"] == pytest.approx(expected)
        assert 0 < timing["timed_s"] < timing["group_wall_s"]
    assert records[0].timing["group_wall_s"] == records[1].timing["group_wall_s"]
