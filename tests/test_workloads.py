"""Decoder workloads on ``llama-tiny``: causal attention counted as causal, decode against a cache of
exactly P tokens, what a step produces, bytes a decode step reads, and bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils import flop_counter
from transformers import DynamicCache

from adapterdrop.errors import InferenceOnlyError, WorkloadError
from adapterdrop.families import build_base, model_config
from adapterdrop.families.decoder import head_dim, kv_cache_bytes
from adapterdrop.inputs import make_batch
from adapterdrop.measure.flops import flops_by_operator
from adapterdrop.measure.types import GroupContext
from adapterdrop.scenario import Scenario
from adapterdrop.serving.workloads import Served, decode_call
from adapterdrop.workloads import (
    attention_flops,
    check_positions,
    prepare_step,
    produced,
    workload_fields,
    workload_of,
)
from adapterdrop.workloads.decode import bytes_per_step

MODEL = "llama-tiny"
BATCH, SEQ = 2, 16
CPU_ATTENTION = "aten._scaled_dot_product_flash_attention_for_cpu"


@pytest.fixture(scope="module")
def context() -> GroupContext:
    config = model_config(MODEL)
    batch = make_batch(config.vocab_size, BATCH, SEQ)
    return GroupContext(config, build_base(config, 0), batch, torch.device("cpu"))


def prepared(context: GroupContext, phase: str, variant: str = "full"):
    scenario = Scenario(model=MODEL, variant=variant, phase=phase, batch_size=BATCH, seq_len=SEQ)
    return prepare_step(scenario, context)


def hand_attention_flops(config, batch: int, queries: int, pairs: int) -> int:
    """Scores and weighted values, 2 FLOPs per multiply-add, over the (query, key) pairs, every layer."""
    per_layer = 2 * (2 * batch * config.num_attention_heads * head_dim(config) * pairs)
    return config.num_hidden_layers * per_layer


def test_causal_pairs() -> None:
    assert attention_flops.causal_pairs(4, 4) == 10
    assert attention_flops.causal_pairs(2, 5) == 3
    assert attention_flops.causal_pairs(5, 2) == 3 + 3 * 2
    assert "_scaled_dot_product_flash_attention_for_cpu" in attention_flops.INSTALLED


def test_prefill_counts_causal_attention_as_the_hand_formula(context) -> None:
    step = prepared(context, "prefill")
    operators = flops_by_operator(step.step)
    pairs = SEQ * (SEQ + 1) // 2
    assert operators[CPU_ATTENTION] == hand_attention_flops(context.config, BATCH, SEQ, pairs)


def test_train_counts_causal_attention_forward_and_backward(context) -> None:
    step = prepared(context, "train")
    loss = []
    forward = flops_by_operator(lambda: loss.append(step.loss()))
    backward = flops_by_operator(lambda: loss[0].backward())
    step.model.zero_grad(set_to_none=True)
    pairs = SEQ * (SEQ + 1) // 2
    expected = hand_attention_flops(context.config, BATCH, SEQ, pairs)
    assert forward[CPU_ATTENTION] == expected
    # the kernel's backward: scores recomputed, then the gradients of values, scores, queries and keys
    assert backward[CPU_ATTENTION + "_backward"] == 5 * expected // 2


def test_decode_counts_one_query_against_the_cache(context) -> None:
    step = prepared(context, "decode")
    operators = flops_by_operator(step.step)
    assert operators[CPU_ATTENTION] == hand_attention_flops(context.config, BATCH, 1, SEQ + 1)


def test_a_call_that_is_not_causal_counts_as_torch_counts_it() -> None:
    q, k, v = (torch.randn(2, 4, 8, 16) for _ in range(3))
    counted = flops_by_operator(lambda: F.scaled_dot_product_attention(q, k, v))
    assert sum(counted.values()) == flop_counter.sdpa_flop_count(q.shape, k.shape, v.shape)


def test_decode_steps_repeat_against_exactly_p_tokens(context) -> None:
    """Every decode step sees the P prompt tokens: the same logits each time, a cache back at P after it."""
    call = decode_call(
        Served(context.base, context.config), context.batch.input_ids, [0] * BATCH, TOKEN(context)
    )
    outputs = [call() for _ in range(3)]
    assert all(torch.equal(outputs[0], out) for out in outputs[1:])
    cache = DynamicCache(config=context.config)
    with torch.inference_mode():
        context.base(input_ids=context.batch.input_ids, cache=cache, use_cache=True)
        alone = context.base(input_ids=TOKEN(context), cache=cache, use_cache=True).logits
    torch.testing.assert_close(outputs[-1], alone)


def TOKEN(context: GroupContext) -> torch.Tensor:  # noqa: N802 -- the new token of every sequence
    return context.batch.input_ids[:, -1:]


def test_what_a_step_produces() -> None:
    def scenario(phase: str) -> Scenario:
        return Scenario(model=MODEL, variant="full", phase=phase, batch_size=4, seq_len=32)

    assert (produced(scenario("train")).samples, produced(scenario("train")).tokens) == (4, 128)
    assert produced(scenario("prefill")).tokens == 128
    assert produced(scenario("decode")).tokens == 4
    encoder = Scenario(model="tiny", variant="full", phase="infer", batch_size=4, seq_len=32)
    assert produced(encoder).tokens == 128


def test_decode_reads_every_weight_and_the_cache(context) -> None:
    step = prepared(context, "decode")
    config, lm = context.config, step.model.lm
    weights = sum(p.numel() for p in lm.parameters()) * 4
    embedding = config.vocab_size * config.hidden_size * 4  # untied in llama-tiny: B rows are read
    expected = (
        weights - embedding + BATCH * config.hidden_size * 4 + kv_cache_bytes(config, BATCH, SEQ + 1, 4)
    )
    assert bytes_per_step(lm, step.scenario) == expected
    fields = workload_fields(step)
    assert fields["bytes_per_token"] == expected / BATCH
    assert fields["memory_kv_cache_bytes"] == kv_cache_bytes(config, BATCH, SEQ + 1, 4)
    assert fields["tokens_per_step"] == BATCH


def test_a_workload_the_family_lacks_is_one_line() -> None:
    with pytest.raises(WorkloadError, match=r"has no workload 'infer' \(valid: train, prefill, decode"):
        workload_of(MODEL, "infer")
    with pytest.raises(WorkloadError, match=r"tiny \(the encoder family\) has no workload 'decode'"):
        workload_of("tiny", "decode")


def test_a_prompt_longer_than_the_positions_is_one_line() -> None:
    check_positions(MODEL, "prefill", 128)
    with pytest.raises(
        WorkloadError, match="128 tokens and its new token does not fit llama-tiny: it has 128"
    ):
        check_positions(MODEL, "decode", 128)
    with pytest.raises(WorkloadError, match="129 tokens does not fit"):
        check_positions(MODEL, "train", 129)


def test_merged_lora_does_not_train(context) -> None:
    with pytest.raises(InferenceOnlyError):
        prepared(context, "train", "lora:merged")
    assert prepared(context, "decode", "lora:merged").model.supports_training is False
