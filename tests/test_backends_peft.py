"""What the ``peft`` variants compute, on the ``tiny`` model (4 layers, width 32)."""

from __future__ import annotations

import re

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import adapterdrop.measure.flops  # noqa: F401 -- attention FLOP formulas on the CPU
from adapterdrop.backends import backend_of, build_variant
from adapterdrop.cli import main
from adapterdrop.errors import VariantError
from adapterdrop.models.encoder import build_base
from adapterdrop.models.presets import model_config
from adapterdrop.profile.breakdown import parameter_counts

LAYERS = 4
LAYER_WISE = ["lora", "dora", "rslora", "ia3", "vera", "loha", "lokr"]
METHODS = [*LAYER_WISE, "prefix", "prompt"]


@pytest.fixture(scope="module")
def config():
    return model_config("tiny")


@pytest.fixture
def base(config):
    return build_base(config)


def ids_labels(config):
    generator = torch.Generator().manual_seed(1)
    return torch.randint(0, config.vocab_size, (3, 8), generator=generator), torch.tensor([0, 1, 1])


def logits(model, ids):
    model.eval()
    with torch.inference_mode():
        return model(ids)


def layer_of(name: str) -> int | None:
    match = re.search(r"encoder\.layer\.(\d+)\.", name)
    return int(match.group(1)) if match else None


@pytest.mark.parametrize("method", METHODS)
def test_every_method_builds_trains_and_leaves_the_shared_encoder_untouched(config, base, method):
    before = {name: value.clone() for name, value in base.state_dict().items()}
    modules = [type(m) for m in base.modules()]
    model = build_variant(method, config, base=base).train()
    ids, labels = ids_labels(config)
    model.loss(ids, labels).backward()
    assert any(p.grad is not None for n, p in model.named_parameters() if not n.startswith("head."))
    assert backend_of(model).name == "peft"
    assert [type(m) for m in base.modules()] == modules  # no module of the shared encoder was wrapped
    assert all(not p.requires_grad and p.grad is None for p in base.parameters())
    assert all(torch.equal(before[name], value) for name, value in base.state_dict().items())
    assert model.describe()["peft_config"]["peft_type"]


def test_lora_with_b_zero_computes_the_frozen_models_logits(config, base):
    """LoRA starts with B = 0: its logits are the frozen encoder's with the same head as ``full``."""
    lora = build_variant("lora", config, base=base)
    assert all(torch.count_nonzero(p) == 0 for n, p in lora.named_parameters() if "lora_B" in n)
    ids, _ = ids_labels(config)
    torch.testing.assert_close(logits(lora, ids), logits(build_variant("full", config, base=base), ids))


@pytest.mark.parametrize("method", ["lora", "ia3", "vera", "loha", "lokr", "dora"])
def test_n_trains_only_layers_k_and_up_and_no_weight_below(config, base, method):
    model = build_variant(f"{method}:n=2", config, base=base).train()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert {layer_of(n) for n in trainable} == {2, 3, None}
    assert all(n.startswith("head.") for n in trainable if layer_of(n) is None)
    assert model.describe()["adapter_layers"] == [2, 3]
    ids, labels = ids_labels(config)
    model.loss(ids, labels).backward()
    graded = [n for n, p in model.named_parameters() if p.grad is not None]
    assert all(layer_of(n) in (2, 3) for n in graded if not n.startswith("head."))


def backward_flops_per_layer(model, config) -> dict[int, int]:
    """FLOPs of each encoder layer in the backward: forward + backward counted per layer module, less the
    forward alone."""
    ids, labels = ids_labels(config)

    def per_layer(backward: bool) -> dict[int, int]:
        with FlopCounterMode(display=False) as counter:
            loss = model.loss(ids, labels)
            if backward:
                loss.backward()
        found = {}
        for name, operators in counter.get_flop_counts().items():
            match = re.fullmatch(r".*encoder\.layer\.(\d+)", name)
            if match:
                found[int(match.group(1))] = sum(operators.values())
        return found

    forward, both = per_layer(False), per_layer(True)
    return {layer: both[layer] - forward[layer] for layer in forward}


@pytest.mark.parametrize("variant", ["lora:n=3", "ia3:n=1", "lokr:n=2"])
def test_the_backward_of_layers_below_k_runs_no_flops(config, base, variant):
    model = build_variant(variant, config, base=base).train()
    k = int(variant.rsplit("=", 1)[1])
    backward = backward_flops_per_layer(model, config)
    assert all(backward[layer] == 0 for layer in range(k)), backward
    assert all(backward[layer] > 0 for layer in range(k, LAYERS)), backward


def test_unmerged_and_merged_lora_give_the_same_logits(config, base):
    model = build_variant("lora:targets=query+value+dense", config, base=base)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    ids, _ = ids_labels(config)
    unmerged = logits(model, ids)
    assert not torch.allclose(unmerged, logits(build_variant("full", config, base=base), ids))
    model.merge()
    assert not any("lora_" in n for n, _ in model.named_parameters())
    torch.testing.assert_close(logits(model, ids), unmerged, rtol=1e-4, atol=1e-5)  # fp32 (execution.py)


def test_merged_lora_is_inference_only(config, base):
    model = build_variant("lora:merged", config, base=base)
    assert not model.supports_training and model.describe()["merged"]


def test_a_peft_variant_and_the_native_adapter_build_on_the_same_encoder_weights(config, base):
    native = build_variant("adapter", config, base=base)
    lora = build_variant("lora:n=1", config, base=base)
    encoder = native.base.state_dict()
    wrapped = lora.peft.get_base_model().state_dict()
    own = {re.sub(r"\.base_layer\.", ".", n): v for n, v in wrapped.items() if "lora_" not in n}
    assert own.keys() == encoder.keys()
    assert all(torch.equal(own[name], value) for name, value in encoder.items())
    assert lora.peft.get_base_model() is not base


def test_the_breakdown_finds_peft_adapters_by_the_backends_patterns(config, base):
    counts = parameter_counts(build_variant("lora:n=2", config, base=base))
    assert ("layer.1", "adapter") not in counts
    assert counts[("layer.2", "adapter")] == (2 * 2 * 8 * 32, 2 * 2 * 8 * 32)  # query + value: A and B
    assert counts[("layer.2", "attention")][1] == 0


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ("loraa", "unknown variant 'loraa'"),
        ("lora:targets=nothing", "peft rejects 'lora:targets=nothing'"),
        ("lora:n=4", "n=4 is out of range for 'lora' on a 4-layer model (0..3)"),
        ("prefix:n=1", "'prefix' cannot take n"),
        ("prompt:n=2", "'prompt' cannot take n"),
        ("ia3:merged", "unknown option 'merged' for variant 'ia3'"),
    ],
)
def test_bad_input_is_one_line(config, base, variant, message):
    with pytest.raises(VariantError, match=re.escape(message)):
        build_variant(variant, config, base=base)


@pytest.mark.parametrize("variant", ["lora:targets=nothing", "lora:n=9", "prefix:n=1", "dora:frobnicate=1"])
def test_the_cli_refuses_bad_peft_variants_in_one_line_before_measuring(capsys, tmp_path, variant):
    results = tmp_path / "r.jsonl"
    status = main(["measure", "--variant", variant, "--model", "tiny", "--results", str(results)])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("adapterdrop: error: ") and len(err.strip().splitlines()) == 1
    assert not results.exists()


@pytest.mark.parametrize("name", ["peft", "peft-gpu"])
def test_the_peft_presets_hold_every_method_in_both_phases_and_fit_their_model(name):
    from adapterdrop.plan import check_variants_fit, expand_groups, load_preset

    preset = load_preset(name)
    groups = expand_groups(preset, devices=["cpu"])
    by_phase: dict[str, set[str]] = {}
    for group in groups:
        for scenario in group.scenarios:
            assert scenario.baseline == "full"
            by_phase.setdefault(scenario.phase, set()).add(scenario.variant)
    for variants in by_phase.values():
        assert {*METHODS, "full", "adapter"} <= variants
        assert {f"{m}:n={n}" for m in ("lora", "ia3") for n in (3, 6, 9)} <= variants
    assert "lora:merged" in by_phase["infer"] and "lora:merged" not in by_phase["train"]
    for model in preset.models:
        check_variants_fit(model, sorted({v for variants in by_phase.values() for v in variants}))


def test_the_variants_command_lists_every_peft_method(capsys):
    assert main(["variants"]) == 0
    out = capsys.readouterr().out
    assert all(f"\n{name}:" in f"\n{out}" for name in METHODS)


def test_the_profiler_sees_peft_layers_and_adapters_as_regions(config, base):
    from adapterdrop.models.encoder import tracing_regions

    model = build_variant("lora:n=2", config, base=base)
    ids, _ = ids_labels(config)
    seen: list[str] = []
    stack: list[str] = []

    def tracer(name, fn, args):
        seen.append("/".join([*stack, name]))
        stack.append(name)
        try:
            return fn(*args)
        finally:
            stack.pop()

    with tracing_regions(tracer), torch.no_grad():
        model(ids)
    layers = config.num_hidden_layers
    assert [p for p in seen if "/" not in p] == ["embeddings"] + [f"layer.{i}" for i in range(layers)] + [
        "head"
    ]
    adapted = {p.split("/")[0] for p in seen if p.endswith("/adapter")}
    assert adapted == {f"layer.{i}" for i in range(2, layers)}  # LoRA's A and B run inside layers 2..L-1
