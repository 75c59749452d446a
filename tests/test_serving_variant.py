"""``serve`` as a harness variant: N LoRA adapters served at once, measured in the decoder's groups."""

from __future__ import annotations

import pytest
import torch

from adapterdrop.backends import build_variant
from adapterdrop.errors import InferenceOnlyError, VariantError
from adapterdrop.families import model_config
from adapterdrop.measure import runner
from adapterdrop.measure.prepare import group_context, prepare_step
from adapterdrop.measure.timing import TimingConfig
from adapterdrop.scenario import Scenario

MODEL = "llama-tiny"


def scenario(variant: str, phase: str = "decode", batch_size: int = 4) -> Scenario:
    return Scenario(
        model=MODEL, variant=variant, phase=phase, batch_size=batch_size, seq_len=8, baseline="full"
    )


def test_every_implementation_serves_the_same_rows():
    """native, peft and merged steps of one group give the same logits row by row (same adapters drawn)."""
    context = group_context(scenario("full", "prefill"))
    outputs = {}
    for impl in ("native", "peft", "merged"):
        prepared = prepare_step(scenario(f"serve:impl={impl},adapters=4,mix=distinct", "prefill"), context)
        model = prepared.model
        step = model.step("prefill", 4, 8)
        outputs[impl] = step()
        assert model.describe()["drawn_adapters"] == list(model.drawn) and sorted(model.drawn) == [0, 1, 2, 3]
    torch.testing.assert_close(outputs["peft"], outputs["native"], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(outputs["merged"], outputs["native"], rtol=1e-4, atol=1e-4)


def test_a_serving_group_is_measured_against_the_base_model():
    timing = TimingConfig(rounds=3, min_sample_time_s=0.01, warmup_steps=1)
    group = [
        scenario("full"),
        scenario("serve:impl=native,adapters=2"),
        scenario("serve:impl=peft,adapters=2"),
    ]
    full, native, peft = runner.measure_group(group, timing, baseline="full")
    for record in (full, native, peft):
        assert record.status == "ok", record.error
        assert record.tokens_per_step == 4  # decode: one token per request
        assert record.throughput_tokens_s == pytest.approx(4 / record.time_median_s)
        assert record.memory_kv_cache_bytes > 0
    assert native.variant_info["implementation"] == "native" and native.variant_info["adapters"] == 2
    assert native.speedup == pytest.approx(full.time_median_s / native.time_median_s)


def test_serve_is_refused_where_it_cannot_run():
    with pytest.raises(VariantError, match="serves a decoder LLM"):
        build_variant("serve", model_config("tiny"))  # an encoder
    train = group_context(scenario("full", "train"))
    with pytest.raises(InferenceOnlyError):  # the runner records it as skipped
        prepare_step(scenario("serve", "train"), train)
    context = group_context(scenario("full", "decode", batch_size=4))
    with pytest.raises(VariantError, match="distinct"):  # N distinct adapters need N requests
        prepare_step(scenario("serve:mix=distinct,adapters=3", "decode", batch_size=4), context)
