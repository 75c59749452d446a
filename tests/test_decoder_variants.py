"""Variants on a decoder (``llama-tiny``, 4 layers): no adapters = the transformers model, LoRA with B = 0 =
the base, ``lora:n=K`` trains layers K..L-1 only and its backward runs no FLOPs below layer K."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import AutoModelForCausalLM

from adapterdrop.errors import VariantError
from adapterdrop.families import build_base, model_config
from adapterdrop.families.decoder_variants import _ADAPTED, build_decoder_variant

LAYERS = 4


@pytest.fixture(scope="module")
def config():
    return model_config("llama-tiny")


@pytest.fixture(scope="module")
def base(config):
    return build_base(config, 0)


@pytest.fixture(scope="module")
def ids(config) -> torch.Tensor:
    return torch.randint(0, config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(1))


def test_full_without_adapters_gives_the_transformers_logits(config, base, ids) -> None:
    torch.manual_seed(0)
    reference = AutoModelForCausalLM.from_config(config).eval()
    for train in (False, True):
        variant = build_decoder_variant("full", config, base, 0, train=train).eval()
        with torch.no_grad():
            torch.testing.assert_close(variant(ids), reference(input_ids=ids).logits, rtol=0, atol=0)
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(
            reference(input_ids=ids).logits[:, :-1].reshape(-1, config.vocab_size), ids[:, 1:].reshape(-1)
        )
        torch.testing.assert_close(variant.loss(ids), expected)


@pytest.mark.parametrize("name", ["lora", "lora:n=2", "dora:n=1", "rslora"])
def test_lora_with_b_zero_gives_the_base_logits(config, base, ids, name: str) -> None:
    variant = build_decoder_variant(name, config, base, 0, train=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(variant(ids), base(input_ids=ids).logits)


def test_lora_n_k_trains_layers_k_and_up_only(config, base) -> None:
    variant = build_decoder_variant("lora:n=2", config, base, 0, train=True)
    trainable = [name for name, p in variant.named_parameters() if p.requires_grad]
    assert trainable and all(_ADAPTED.search(name) for name in trainable)
    assert {int(_ADAPTED.search(name)["layer"]) for name in trainable} == {2, 3}
    assert variant.describe()["adapter_layers"] == [2, 3]


def _layer_flops(variant, ids, backward: bool) -> list[int]:
    with FlopCounterMode(display=False) as counter:
        loss = variant.loss(ids)
        if backward:
            loss.backward()
    counts = counter.get_flop_counts()
    prefix = next(k for k in counts if k.endswith(".layers.0")).removesuffix("0")
    return [sum(counts[f"{prefix}{i}"].values()) for i in range(LAYERS)]


def test_the_backward_below_layer_k_runs_no_flops(config, base, ids) -> None:
    """AdapterDrop's mechanism: layers without an adapter below the first adapted one take no backward."""
    variant = build_decoder_variant("lora:n=2", config, base, 0, train=True)
    forward = _layer_flops(variant, ids, backward=False)
    step = _layer_flops(variant, ids, backward=True)
    assert step[:2] == forward[:2]
    assert all(s > f for s, f in zip(step[2:], forward[2:], strict=True))


def test_merged_lora_gives_the_unmerged_logits(config, base, ids) -> None:
    variant = build_decoder_variant("lora:n=1", config, base, 0, train=True).eval()
    with torch.no_grad():
        for name, parameter in variant.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.1)
        unmerged = variant(ids)
        merged = copy.deepcopy(variant.lm).merge_and_unload()(input_ids=ids).logits
    assert not torch.allclose(unmerged, base(input_ids=ids).logits)
    torch.testing.assert_close(merged, unmerged, rtol=1e-4, atol=1e-5)


def test_the_shared_base_is_untouched(config, base, ids) -> None:
    before = {name: p.clone() for name, p in base.named_parameters()}
    build_decoder_variant("lora:n=1", config, base, 0, train=True)
    build_decoder_variant("lora:merged", config, base, 0, train=False)
    full = build_decoder_variant("full", config, base, 0, train=True)
    assert full.lm is not base and not any(p.requires_grad for p in base.parameters())
    assert all(torch.equal(p, before[name]) for name, p in base.named_parameters())
    assert not any("lora" in name for name, _ in base.named_modules())
    assert build_decoder_variant("full", config, base, 0, train=False).lm is base


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("parallel:tasks=2", "'parallel' does not run on a decoder yet; decoders run full, lora, dora"),
        ("adapter:placement=houlsby", "decoders take the pfeiffer placement only"),
        ("adapterdrop:robust", "robust AdapterDrop does not run on decoders yet"),
        ("adapterdrop:n=4", "needs 0 <= n < 4"),
        ("lora:n=4", "n=4 is out of range for 'lora' on a 4-layer model"),
        ("lora:targets=nope", "peft rejects 'lora:targets=nope' on llama"),
    ],
)
def test_bad_variants_are_one_line(config, base, name: str, message: str) -> None:
    with pytest.raises(VariantError, match=message) as info:
        build_decoder_variant(name, config, base, 0, train=True)
    assert "\n" not in str(info.value)


def test_native_adapters_with_a_zero_up_projection_give_the_base_logits(config, base, ids) -> None:
    for name in ("adapter", "adapterdrop:n=2"):
        variant = build_decoder_variant(name, config, base, 0, train=True).eval()
        with torch.no_grad():
            for adapter in variant.adapters.values():
                adapter.up.weight.zero_()
                adapter.up.bias.zero_()
            torch.testing.assert_close(variant(ids), base(input_ids=ids).logits)


def test_native_adapterdrop_trains_only_upper_adapters_and_runs_no_backward_below(config, base, ids) -> None:
    variant = build_decoder_variant("adapterdrop:n=2", config, base, 0, train=True)
    trainable = {name for name, p in variant.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith(("adapters.2.", "adapters.3.")) for name in trainable)
    assert variant.describe()["adapter_layers"] == [2, 3]
    forward = _layer_flops(variant, ids, backward=False)
    step = _layer_flops(variant, ids, backward=True)
    assert step[:2] == forward[:2]  # no backward in layers 0 and 1
    assert all(s > f for s, f in zip(step[2:], forward[2:], strict=True))
    with torch.no_grad():  # the adapters change the logits, and the shared base carries no hook
        assert not torch.allclose(variant(ids), base(input_ids=ids).logits)
    assert not any(layer.mlp._forward_hooks for layer in base.model.layers)


@pytest.mark.parametrize("method", ["ia3", "vera", "loha", "lokr"])
def test_other_peft_methods_take_n_on_decoders(config, base, ids, method: str) -> None:
    variant = build_decoder_variant(f"{method}:n=2", config, base, 0, train=True)
    trainable = [name for name, p in variant.named_parameters() if p.requires_grad]
    assert trainable and {int(_ADAPTED.search(name)["layer"]) for name in trainable} == {2, 3}
    forward = _layer_flops(variant, ids, backward=False)
    step = _layer_flops(variant, ids, backward=True)
    assert step[:2] == forward[:2]  # no backward below layer 2
    assert variant.describe()["method"] == method and variant.describe()["adapter_layers"] == [2, 3]


@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_virtual_token_methods_train_on_decoders_and_refuse_inference(config, base, ids, method: str) -> None:
    variant = build_decoder_variant(method, config, base, 0, train=True)
    variant.loss(ids).backward()
    trainable = [p for p in variant.parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for p in trainable)
    assert not any(p.requires_grad for p in base.parameters())
    with pytest.raises(VariantError, match="runs the train workload only on decoders"):
        build_decoder_variant(method, config, base, 0, train=False)
