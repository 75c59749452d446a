"""Same numbers in every execution mode: a compiled (and, with CUDA, a graphed) step computes the logits, or
the loss and gradients, of the eager step, within the per-dtype tolerance of
``adapterdrop.measure.execution.TOLERANCES``, for every variant family; and its training step updates the
parameters as eager does.

Each case builds the eager step and the mode's step of one variant on one shared encoder (same seed, so the
same weights), with dropout off (a compiled dropout draws its masks from another generator): the config's
dropout probabilities are 0, and so is the classification heads' own (0.1 by default). It compares one
step's outputs for every value a stochastic variant draws. Compiling is the cost: each case compiles
its variant once (robust AdapterDrop once per n, here n in {0, 1}); with inductor's cache warm a case takes
a few seconds on 2 cores, cold (a fresh machine) up to a minute.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json

import pytest
import torch

from adapterdrop.measure.execution import compare_outputs, step_outputs
from adapterdrop.measure.prepare import PreparedStep, group_context, prepare_step
from adapterdrop.models import heads
from adapterdrop.scenario import Scenario

#: one case per variant family, in the phase it is most used in (parallel and separate only infer)
FAMILIES = [
    ("full", "train"),
    ("adapter", "infer"),
    ("adapterdrop:n=2", "train"),
    ("adapterdrop:robust,max=1", "train"),
    ("parallel:tasks=2,n=1", "infer"),
    ("separate:tasks=2,n=1", "infer"),
    ("fusion:adapters=2", "train"),
]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    """A 4-layer, hidden-32 BERT config without dropout, as a config.json path (a valid --model)."""
    path = tmp_path_factory.mktemp("exec") / "config.json"
    config = {
        "model_type": "bert",
        "num_hidden_layers": 4,
        "hidden_size": 32,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "vocab_size": 99,
        "max_position_embeddings": 64,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
    }
    path.write_text(json.dumps(config))
    return str(path)


@pytest.fixture(autouse=True)
def no_head_dropout(monkeypatch):
    """Heads built in these tests keep every activation (their dropout defaults to 0.1, whatever the
    config says)."""
    monkeypatch.setattr(heads.ClassificationHead.__init__, "__defaults__", (0.0,))


def trainable(prepared: PreparedStep) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in prepared.model.named_parameters() if p.requires_grad}


def assert_same_steps(eager: PreparedStep, other: PreparedStep) -> None:
    """One step of each, per drawn value: same outputs; for training, the same parameters after it."""
    dtype = eager.scenario.dtype
    for value in eager.model.draw_values() if eager.loss is not None else [None]:
        with contextlib.ExitStack() as pins:
            if value is not None:
                pins.enter_context(eager.model.fixed_draw(value))
                pins.enter_context(other.model.fixed_draw(value))
            expected, actual = step_outputs(eager), step_outputs(other)
        assert compare_outputs(expected, actual, dtype) == [], value
        if eager.loss is not None:
            assert any(name.startswith("grad.") for name in expected)
            assert compare_outputs(trainable(eager), trainable(other), dtype) == [], f"update, {value}"


@pytest.mark.parametrize(("variant", "phase"), FAMILIES, ids=[f"{v}-{p}" for v, p in FAMILIES])
def test_compiled_step_computes_what_eager_computes(model, variant, phase):
    eager_scenario = Scenario(model=model, variant=variant, phase=phase, batch_size=2, seq_len=8)
    context = group_context(eager_scenario)
    eager = prepare_step(eager_scenario, context)
    compiled = prepare_step(dataclasses.replace(eager_scenario, exec="compile"), context)
    execution = compiled.execution
    assert execution is not None and execution.eager.model is compiled.model
    assert execution.setup_s > 0 and execution.info["graph_breaks"] == 0
    assert_same_steps(eager, compiled)
    draws = eager.model.draw_values() if phase == "train" else ()
    assert execution.info["graphs"] == max(1, len(draws))  # robust: one graph per n
    assert execution.recompiles() == 0 and execution.compiles_after_setup() == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize(("variant", "phase"), FAMILIES, ids=[f"{v}-{p}" for v, p in FAMILIES])
def test_graphed_step_computes_what_eager_computes(model, variant, phase, dtype):
    precision = "autocast" if dtype != "fp32" and phase == "train" else "native"
    common = dict(model=model, variant=variant, phase=phase, batch_size=2, seq_len=8, device="cuda")
    eager_scenario = Scenario(**common, dtype=dtype, precision=precision)
    context = group_context(eager_scenario)
    eager = prepare_step(eager_scenario, context)
    graphed = prepare_step(dataclasses.replace(eager_scenario, exec="cudagraph"), context)
    assert graphed.execution is not None and graphed.execution.memory["peak_memory_bytes"] > 0
    if phase == "train":
        assert graphed.optimizer_name.endswith("capturable)")
    assert_same_steps(eager, graphed)
    draws = eager.model.draw_values() if phase == "train" else ()
    assert graphed.execution.info["graphs"] == max(1, len(draws))
