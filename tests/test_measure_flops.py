"""FLOP counts against the closed form of a tiny BERT, forward and training step, with and without adapters.

Closed form (FLOPs = 2 per multiply-add), batch B, sequence S, hidden H, feed-forward (intermediate)
width FFN, bottleneck b, C labels, L layers, M = B*S rows:
- per layer: Q, K, V, output projections 4*2*M*H*H; attention scores and weighted values 2*2*B*S*S*H;
  feed-forward 2*2*M*H*FFN; a Pfeiffer adapter 2*2*M*H*b;
- head on the first token: 2*B*H*H + 2*B*H*C.
Backward, per matrix product: the gradient of its input where something below it trains, the gradient of its
weight where the weight trains (each costs what the forward product did). Attention in training mode runs
with dropout, so CPU sdpa takes the math path whose backward is 4 products (2x its forward); without
dropout the fused CPU kernel runs, whose backward (counted by our registered formula) is 5 products
(2.5x its forward).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from adapterdrop.backends import build_variant
from adapterdrop.inputs import make_batch
from adapterdrop.measure.flops import count_flops, flops_by_operator
from adapterdrop.measure.runner import measure_group
from adapterdrop.models.presets import model_config
from adapterdrop.scenario import Scenario

CONFIG = model_config("tiny")
B, S, C = 2, 16, 2
H, FFN, L = CONFIG.hidden_size, CONFIG.intermediate_size, CONFIG.num_hidden_layers
BOTTLENECK = H // 16
M = B * S


def mm(rows: int, inputs: int, outputs: int) -> int:
    return 2 * rows * inputs * outputs


LAYER_LINEAR = 4 * mm(M, H, H) + mm(M, H, FFN) + mm(M, FFN, H)
ATTENTION = 2 * 2 * B * S * S * H
ADAPTER = mm(M, H, BOTTLENECK) + mm(M, BOTTLENECK, H)
HEAD = mm(B, H, H) + mm(B, H, C)


def forward_flops(adapter_layers: int) -> int:
    return L * (LAYER_LINEAR + ATTENTION) + adapter_layers * ADAPTER + HEAD


def full_backward(attention_factor: float) -> int:
    # every weight trains and the embeddings train, so every product needs both gradients
    return round(L * (2 * LAYER_LINEAR + attention_factor * ATTENTION)) + 2 * HEAD


def adapter_backward(first_adapter: int) -> int:
    # frozen encoder: nothing below the first adapter; that adapter's down-projection needs only its weight
    # gradient (its input does not depend on anything trainable), its up-projection both
    first = mm(M, H, BOTTLENECK) + 2 * mm(M, BOTTLENECK, H)
    above = L - first_adapter - 1
    return first + above * (LAYER_LINEAR + 2 * ATTENTION + 2 * ADAPTER) + 2 * HEAD


def scenarios(phase: str, variants: list[str]) -> list[Scenario]:
    return [
        Scenario(
            model="tiny",
            variant=v,
            phase=phase,
            batch_size=B,
            seq_len=S,
            threads=1,
            comparison="flops",
            baseline=variants[0],
        )
        for v in variants
    ]


@pytest.fixture(scope="module")
def train_records():
    from adapterdrop.measure.timing import TimingConfig

    timing = TimingConfig(rounds=1, min_sample_time_s=0.001, warmup_steps=0)
    records = measure_group(
        scenarios("train", ["full", "adapter", "adapterdrop:n=2"]), timing, baseline="full"
    )
    return {r.variant: r for r in records}


def test_cpu_sdpa_is_counted_forward_and_backward():
    q = torch.randn(2, 4, 16, 8, requires_grad=True)
    per_op = flops_by_operator(lambda: F.scaled_dot_product_attention(q, q, q).sum().backward())
    forward = 2 * 2 * 2 * 4 * 16 * 16 * 8
    assert per_op["aten._scaled_dot_product_flash_attention_for_cpu"] == forward
    assert per_op["aten._scaled_dot_product_flash_attention_for_cpu_backward"] == forward * 5 // 2


@pytest.mark.parametrize(("variant", "adapters"), [("full", 0), ("adapter", L), ("adapterdrop:n=2", L - 2)])
def test_inference_forward_matches_closed_form(variant, adapters):
    model = build_variant(variant, CONFIG, seed=0).eval()
    ids = make_batch(CONFIG.vocab_size, B, S).input_ids
    with torch.inference_mode():
        per_op = flops_by_operator(lambda: model(ids))
    assert per_op["aten._scaled_dot_product_flash_attention_for_cpu"] == L * ATTENTION  # not zero on CPU
    assert sum(per_op.values()) == forward_flops(adapters)


def test_full_step_without_dropout_uses_the_registered_backward_formula():
    model = build_variant("full", CONFIG, seed=0).eval()  # no dropout: the fused CPU attention kernel
    batch = make_batch(CONFIG.vocab_size, B, S)
    assert count_flops(lambda: model.loss(batch.input_ids, batch.labels).backward()) == (
        forward_flops(0) + full_backward(2.5)
    )


@pytest.mark.parametrize(
    ("variant", "adapters", "backward"),
    [
        ("full", 0, full_backward(2)),
        ("adapter", L, adapter_backward(0)),
        ("adapterdrop:n=2", L - 2, adapter_backward(2)),
    ],
)
def test_training_step_matches_closed_form(train_records, variant, adapters, backward):
    record = train_records[variant]
    assert record.status == "ok", record.error
    assert record.flops_forward == forward_flops(adapters)
    assert record.flops_step == forward_flops(adapters) + backward


def test_ideal_speedup_is_the_flop_ratio(train_records):
    full, adapter = train_records["full"], train_records["adapter"]
    assert adapter.ideal_speedup == pytest.approx(full.flops_step / adapter.flops_step)
    assert adapter.ideal_speedup > 1.5  # adapters skip the weight gradients of the encoder
    assert adapter.efficiency == pytest.approx(adapter.speedup / adapter.ideal_speedup)
    assert full.speedup == full.ideal_speedup == 1.0
