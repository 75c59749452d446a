"""Serving many LoRA adapters on ``llama-tiny``: every implementation equals each request run alone.

The reference for a row is that row alone (batch 1) through the ``peft`` model with only its adapter active
(``set_adapter``): the peft mixed batch, the native batched LoRA and the merged models must each give the same
logits per row, in prefill and in decode, and the fork must give each task's logits alone.
"""

from __future__ import annotations

import pytest
import torch
from transformers import PreTrainedModel

from adapterdrop.errors import AdapterDropError
from adapterdrop.families import build_base, model_config
from adapterdrop.families.decoder import layers as decoder_layers
from adapterdrop.serving.lora import LoRASpec
from adapterdrop.serving.mixes import MIXES, draw_adapters
from adapterdrop.serving.steps import IMPLEMENTATIONS, ServingSet, prompts, serving_step
from adapterdrop.serving.workloads import Served, decode_call, prefill_call

#: (atol, rtol) of logits per dtype: fp32 differs by summation order only; bf16 rounds each product
TOLERANCE = {torch.float32: (1e-4, 1e-4), torch.bfloat16: (5e-2, 5e-2)}
PROMPT_LEN = 6
BATCH = 6
NUM_ADAPTERS = 4


def tiny_llama(dtype: torch.dtype = torch.float32) -> PreTrainedModel:
    """The ``llama-tiny`` preset (4 layers, hidden 32), random weights from seed 0, in ``dtype``."""
    return build_base(model_config("llama-tiny")).to(dtype)


def serving_set(layers: tuple[int, ...] | None = None, dtype: torch.dtype = torch.float32) -> ServingSet:
    spec = LoRASpec(
        num_adapters=NUM_ADAPTERS,
        rank=4,
        alpha=8,
        target_modules=("q_proj", "v_proj", "down_proj"),
        layers=layers,
    )
    return ServingSet(tiny_llama(dtype), spec)


@pytest.fixture(scope="module")
def serving() -> ServingSet:
    return serving_set()


def alone(
    serving: ServingSet, ids: torch.Tensor, adapter: int, token: torch.Tensor | None = None
) -> torch.Tensor:
    """Logits of one row run alone through the peft model with only adapter ``adapter`` active: every
    position of the prompt, or the decode step of ``token`` after it."""
    serving.peft_model.set_adapter(serving.spec.names[adapter])
    served = Served(serving.peft_model, serving.config)
    if token is None:
        return prefill_call(served, ids, [adapter], keep=0)()
    return decode_call(served, ids, [adapter], token)()


def assert_rows_alone(serving: ServingSet, logits, ids, adapters, token=None, dtype=torch.float32) -> None:
    atol, rtol = TOLERANCE[dtype]
    for row, adapter in enumerate(adapters):
        expected = alone(
            serving, ids[row : row + 1], adapter, None if token is None else token[row : row + 1]
        )
        torch.testing.assert_close(logits[row : row + 1], expected, atol=atol, rtol=rtol)


def test_mixes() -> None:
    assert draw_adapters("same", 5, 8) == [0] * 5
    assert draw_adapters("distinct", 4, 4) == [0, 1, 2, 3]
    uniform = draw_adapters("uniform", 64, 8, seed=3)
    assert uniform == draw_adapters("uniform", 64, 8, seed=3) and set(uniform) <= set(range(8))
    assert len(set(uniform)) > 1
    zipf = draw_adapters("zipf", 2000, 8, seed=1)
    counts = [zipf.count(k) for k in range(8)]
    assert counts[0] > counts[1] > counts[3] and counts[0] / 2000 == pytest.approx(
        1 / sum(k**-1.5 for k in range(1, 9)), abs=0.03
    )
    with pytest.raises(AdapterDropError, match="distinct"):
        draw_adapters("distinct", 4, 8)
    with pytest.raises(AdapterDropError, match="unknown popularity mix"):
        draw_adapters("popular", 4, 8)


def test_adapters_differ(serving: ServingSet) -> None:
    """Each adapter changes the logits, differently: the equivalence tests below can tell adapters apart."""
    ids = prompts(1, PROMPT_LEN, serving.config.vocab_size)
    base = prefill_call(serving.served("base", [0]), ids, [0], keep=0)()
    first, second = alone(serving, ids, 0), alone(serving, ids, 1)
    assert (first - base).abs().max() > 1e-2 and (first - second).abs().max() > 1e-2


@pytest.mark.parametrize("implementation", ["peft", "native", "merged"])
def test_prefill_rows_equal_alone(serving: ServingSet, implementation: str) -> None:
    adapters = draw_adapters("uniform", BATCH, NUM_ADAPTERS, seed=2)
    assert len(set(adapters)) > 1
    ids = prompts(BATCH, PROMPT_LEN, serving.config.vocab_size)
    logits = prefill_call(serving.served(implementation, adapters), ids, adapters, keep=0)()
    assert_rows_alone(serving, logits, ids, adapters)


@pytest.mark.parametrize("implementation", ["peft", "native", "merged"])
def test_decode_rows_equal_alone(serving: ServingSet, implementation: str) -> None:
    adapters = draw_adapters("distinct", NUM_ADAPTERS, NUM_ADAPTERS)
    ids = prompts(NUM_ADAPTERS, PROMPT_LEN, serving.config.vocab_size)
    token = prompts(NUM_ADAPTERS, 1, serving.config.vocab_size, seed=1)
    step = decode_call(serving.served(implementation, adapters), ids, adapters, token)
    first = step()
    assert_rows_alone(serving, first, ids, adapters, token)
    torch.testing.assert_close(step(), first)  # every call is the same step at cache length P


def test_native_bf16_rows_equal_alone() -> None:
    serving = serving_set(dtype=torch.bfloat16)
    adapters = draw_adapters("zipf", BATCH, NUM_ADAPTERS, seed=5)
    ids = prompts(BATCH, PROMPT_LEN, serving.config.vocab_size)
    logits = prefill_call(serving.served("native", adapters), ids, adapters, keep=0)()
    assert_rows_alone(serving, logits, ids, adapters, dtype=torch.bfloat16)


def test_fork_equals_each_task_alone() -> None:
    """LoRA on layers 2 and 3 of 4: layers 0 and 1 run once, the batch forks at layer 2."""
    serving = serving_set(layers=(2, 3))
    assert serving.fork_layer == 2
    step = serving_step(serving, "fork", "parallel", "distinct", NUM_ADAPTERS, PROMPT_LEN)
    assert step.tokens == NUM_ADAPTERS * PROMPT_LEN and step.adapters == (0, 1, 2, 3)
    ids = prompts(1, PROMPT_LEN, serving.config.vocab_size)
    served = serving.served("fork", list(step.adapters))
    rows: list[int] = []
    hooks = [
        layer.register_forward_hook(lambda m, a, out: rows.append(out.shape[0]))
        for layer in decoder_layers(served.model)
    ]
    forked = prefill_call(served, ids, list(step.adapters), keep=0)()
    for hook in hooks:
        hook.remove()
    assert rows == [1, 1, NUM_ADAPTERS, NUM_ADAPTERS]
    assert forked.shape[0] == NUM_ADAPTERS
    assert_rows_alone(serving, forked, ids.expand(NUM_ADAPTERS, -1), step.adapters)


def test_steps_count_tokens(serving: ServingSet) -> None:
    prefill = serving_step(serving, "native", "prefill", "uniform", BATCH, PROMPT_LEN)
    decode = serving_step(serving, "merged", "decode", "zipf", BATCH, PROMPT_LEN)
    assert (prefill.tokens, decode.tokens) == (BATCH * PROMPT_LEN, BATCH)
    assert prefill.fn().shape == (BATCH, 1, serving.config.vocab_size)
    assert decode.fn().shape == (BATCH, 1, serving.config.vocab_size)
    with pytest.raises(AdapterDropError, match="not 'merged'"):
        serving_step(serving, "merged", "parallel", "same", BATCH, PROMPT_LEN)
    with pytest.raises(AdapterDropError, match="unknown serving workload"):
        serving_step(serving, "native", "train", "same", BATCH, PROMPT_LEN)


def test_copies_share_base_weights() -> None:
    """One set of base weights: the implementations share every tensor but a merged model's targeted ones,
    and merging leaves the base untouched."""
    serving = serving_set()
    base_q = serving.base.model.layers[0].self_attn.q_proj.weight
    before = base_q.clone()
    merged = serving.served("merged", [1]).models[1]
    assert merged.model.embed_tokens.weight is serving.base.model.embed_tokens.weight
    assert merged.model.layers[0].mlp.up_proj.weight is serving.base.model.layers[0].mlp.up_proj.weight
    assert merged.model.layers[0].self_attn.q_proj.weight is not base_q
    assert serving.native.model.model.layers[0].self_attn.q_proj.weight is base_q
    torch.testing.assert_close(base_q, before, atol=0, rtol=0)


@pytest.mark.parametrize("workload", ["prefill", "decode"])
@pytest.mark.parametrize("mix", MIXES)
def test_every_step_agrees(serving: ServingSet, workload: str, mix: str) -> None:
    """The steps the harness times: for one (workload, mix), every implementation's step gives the same
    last-position logits on the same drawn adapters and prompts; the base model's differ."""
    batch = NUM_ADAPTERS if mix == "distinct" else BATCH
    steps = {impl: serving_step(serving, impl, workload, mix, batch, PROMPT_LEN) for impl in IMPLEMENTATIONS}
    assert len({step.adapters for step in steps.values()}) == 1
    assert {step.tokens for step in steps.values()} == {batch * (PROMPT_LEN if workload == "prefill" else 1)}
    logits = {impl: step.fn() for impl, step in steps.items()}
    for impl in ("native", "merged"):
        torch.testing.assert_close(logits[impl], logits["peft"], atol=1e-4, rtol=1e-4)
    assert (logits["base"] - logits["peft"]).abs().max() > 1e-2
