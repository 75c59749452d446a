"""Parallel inference with bottleneck adapters on ``llama-tiny`` (fp32): the fork equals each task alone.

The reference for task t is the prompt alone (batch 1) through a copy of the base with only task t's
adapters, put on by :func:`adapterdrop.families.decoder_adapters.attach_adapters` (the decoder family's own
hooks) and given task t's weights. Adapters sit on layers 2 and 3 of 4: the fork runs layers 0 and 1 once.
"""

from __future__ import annotations

import pytest
import torch
from transformers import PreTrainedModel

from adapterdrop.backends import parse_variant
from adapterdrop.errors import AdapterDropError
from adapterdrop.families import build_base, model_config
from adapterdrop.families.decoder import layers as decoder_layers
from adapterdrop.families.decoder_adapters import attach_adapters
from adapterdrop.serving.bottleneck import BottleneckGroup, BottleneckSpec
from adapterdrop.serving.copies import sharing_copy
from adapterdrop.serving.lora import LoRASpec
from adapterdrop.serving.steps import ServingSet, prompts, serving_step
from adapterdrop.serving.workloads import Served, prefill_call

NUM_TASKS = 4
PROMPT_LEN = 6
LAYERS = (2, 3)
#: reduction 2 (width 16 on hidden 32): adapters wide enough to move the logits well above the tolerance
REDUCTION = 2
ATOL = RTOL = 1e-4


def tiny_llama() -> PreTrainedModel:
    """The ``llama-tiny`` preset (4 layers, hidden 32), random weights from seed 0, fp32, eval mode."""
    return build_base(model_config("llama-tiny")).eval()


@pytest.fixture(scope="module")
def group() -> BottleneckGroup:
    return BottleneckGroup(tiny_llama(), BottleneckSpec(NUM_TASKS, LAYERS, reduction=REDUCTION, seed=3))


def prompt(group: BottleneckGroup) -> torch.Tensor:
    return prompts(1, PROMPT_LEN, group.base.config.vocab_size, seed=1)


def alone(group: BottleneckGroup, task: int, ids: torch.Tensor) -> torch.Tensor:
    """Logits of ``ids`` (1, P) through a copy of the base with only task ``task``'s adapters."""
    model = sharing_copy(group.base)
    variant = parse_variant(f"adapter:reduction={REDUCTION}")
    adapters = attach_adapters(model, LAYERS, variant)
    for layer in LAYERS:
        adapters[str(layer)].load_state_dict(group.banks[layer].adapter(task).state_dict())
    return prefill_call(Served(model, group.base.config), ids, [task], keep=0)()


def run(group: BottleneckGroup, implementation: str, ids: torch.Tensor) -> torch.Tensor:
    return prefill_call(group.served(implementation), ids, list(range(NUM_TASKS)), keep=0)()


def test_tasks_differ(group: BottleneckGroup) -> None:
    """Each task's adapters change the logits, differently: the tests below can tell tasks apart."""
    ids = prompt(group)
    base = prefill_call(Served(group.base, group.base.config), ids, [0], keep=0)()
    first, second = alone(group, 0, ids), alone(group, 1, ids)
    assert (first - base).abs().max() > 1e-2 and (first - second).abs().max() > 1e-2


def test_fork_equals_each_task_alone(group: BottleneckGroup) -> None:
    ids = prompt(group)
    served = group.served("fork-bottleneck")
    rows: list[int] = []
    hooks = [
        layer.register_forward_hook(lambda m, a, out: rows.append(out.shape[0]))
        for layer in decoder_layers(served.model)
    ]
    forked = run(group, "fork-bottleneck", ids)
    for hook in hooks:
        hook.remove()
    assert rows == [1, 1, NUM_TASKS, NUM_TASKS]
    assert forked.shape == (NUM_TASKS, PROMPT_LEN, group.base.config.vocab_size)
    for task in range(NUM_TASKS):
        torch.testing.assert_close(forked[task : task + 1], alone(group, task, ids), atol=ATOL, rtol=RTOL)


def test_fork_equals_separate(group: BottleneckGroup) -> None:
    ids = prompt(group)
    forked = run(group, "fork-bottleneck", ids)
    separate = run(group, "separate-bottleneck", ids.expand(NUM_TASKS, -1))
    torch.testing.assert_close(forked, separate, atol=ATOL, rtol=RTOL)


def test_base_carries_no_hook(group: BottleneckGroup) -> None:
    """Both implementations built, the base model has no hook and shares its weights with them."""
    for implementation in ("fork-bottleneck", "separate-bottleneck"):
        served = group.served(implementation)
        assert (
            served.model.model.layers[0].mlp.up_proj.weight is group.base.model.layers[0].mlp.up_proj.weight
        )
    for module in group.base.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
    with pytest.raises(ValueError, match="one row per task"):
        run(group, "separate-bottleneck", prompt(group))


def test_serving_step_parallel() -> None:
    """From the harness's steps: both give N x P tokens and the same logits; the base model's differ."""
    spec = LoRASpec(num_adapters=NUM_TASKS, rank=4, alpha=8, layers=LAYERS)
    serving = ServingSet(tiny_llama(), spec)
    assert serving.bottleneck.fork_layer == 2
    steps = {
        impl: serving_step(serving, impl, "parallel", "distinct", NUM_TASKS, PROMPT_LEN)
        for impl in ("base", "fork-bottleneck", "separate-bottleneck")
    }
    assert {step.tokens for step in steps.values()} == {NUM_TASKS * PROMPT_LEN}
    logits = {impl: step.fn() for impl, step in steps.items()}
    torch.testing.assert_close(logits["fork-bottleneck"], logits["separate-bottleneck"], atol=ATOL, rtol=RTOL)
    assert logits["fork-bottleneck"].shape == (NUM_TASKS, 1, serving.config.vocab_size)
    assert (logits["base"] - logits["fork-bottleneck"]).abs().max() > 1e-4
    with pytest.raises(AdapterDropError, match="not 'merged-bottleneck'"):
        serving_step(serving, "merged-bottleneck", "parallel", "distinct", NUM_TASKS, PROMPT_LEN)
