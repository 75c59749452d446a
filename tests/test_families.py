"""Model families: the encoder presets unchanged, the decoder presets' geometry, configs from files, the
fit check and the KV-cache size."""

from __future__ import annotations

import dataclasses
import json

import peft
import pytest
import torch
from transformers import AutoModelForCausalLM, DynamicCache

from adapterdrop.errors import UnknownPresetError, UnsupportedModelError
from adapterdrop.families import FAMILIES, family_of, max_positions, model_config, resolve
from adapterdrop.families.decoder import kv_cache_bytes, layers
from adapterdrop.families.fit import FitError, fit_problem, needs, parameter_count, require_fit
from adapterdrop.models import presets
from adapterdrop.scenario import Scenario

GIB = 2**30

#: published parameter counts of the checkpoints the presets mirror (their model cards), in billions
PUBLISHED_BILLIONS = {
    "llama-3.2-1b": 1.24,
    "llama-3.2-3b": 3.21,
    "llama-3.1-8b": 8.03,
    "qwen2.5-0.5b": 0.49,
    "qwen2.5-1.5b": 1.54,
    "mistral-7b": 7.25,
    "gemma-2-2b": 2.61,
}


@pytest.mark.parametrize("name", list(presets.PRESETS))
def test_encoder_presets_resolve_as_before(name: str) -> None:
    family, config = resolve(name)
    assert family.name == "encoder"
    assert config.to_dict() == presets.model_config(name).to_dict()


@pytest.mark.parametrize("name", list(PUBLISHED_BILLIONS))
def test_decoder_presets_have_the_checkpoints_parameter_count(name: str) -> None:
    assert family_of(name).name == "decoder"
    assert round(parameter_count(name) / 1e9, 2) == PUBLISHED_BILLIONS[name]


def test_config_files_and_folders_pick_their_family(tmp_path) -> None:
    llama = model_config("llama-tiny").to_dict()
    (tmp_path / "llama").mkdir()
    (tmp_path / "llama" / "config.json").write_text(json.dumps(llama))
    (tmp_path / "bert.json").write_text(json.dumps(model_config("tiny").to_dict()))
    (tmp_path / "t5.json").write_text(json.dumps({"model_type": "t5"}))
    assert family_of(str(tmp_path / "llama")).name == "decoder"
    assert model_config(str(tmp_path / "llama" / "config.json")).num_hidden_layers == 4
    assert family_of(str(tmp_path / "bert.json")).name == "encoder"
    with pytest.raises(UnsupportedModelError, match="neither"):
        family_of(str(tmp_path / "t5.json"))
    with pytest.raises(UnknownPresetError, match="llama-small"):
        family_of("no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnknownPresetError, match="no config.json"):
        family_of(str(tmp_path / "empty"))


def test_families_declare_their_workloads_and_positions() -> None:
    assert FAMILIES["encoder"].workloads == ("train", "infer")
    assert FAMILIES["decoder"].workloads == ("train", "prefill", "decode")
    assert max_positions("llama-tiny") == 128
    assert max_positions("bert-base") == 512


def test_decoder_layers_are_found_in_a_peft_wrapper_too() -> None:
    family, config = resolve("llama-tiny")
    base = family.build_base(config, 0)
    assert layers(base) is base.model.layers
    wrapped = peft.get_peft_model(base, peft.LoraConfig(task_type="CAUSAL_LM", target_modules=["q_proj"]))
    assert layers(wrapped) is base.model.layers


def test_decoder_base_is_the_transformers_model_with_the_same_seed() -> None:
    family, config = resolve("llama-tiny")
    base = family.build_base(config, 3)
    torch.manual_seed(3)
    plain = AutoModelForCausalLM.from_config(config).eval()
    ids = torch.randint(0, config.vocab_size, (2, 8))
    assert torch.equal(base(input_ids=ids).logits, plain(input_ids=ids).logits)
    assert not any(p.requires_grad for p in base.parameters())


def test_kv_cache_bytes_is_what_a_dynamic_cache_holds() -> None:
    family, config = resolve("llama-tiny")
    base = family.build_base(config, 0)
    cache = DynamicCache(config=config)
    with torch.inference_mode():
        base(input_ids=torch.randint(0, config.vocab_size, (3, 10)), cache=cache, use_cache=True)
    held = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    assert kv_cache_bytes(config, 3, 10, 4) == held


def test_an_8b_model_in_fp32_does_not_fit_24_gib_and_says_why() -> None:
    scenario = Scenario(model="llama-3.1-8b", variant="full", phase="train", batch_size=1, seq_len=128)
    problem = fit_problem(scenario, {"cpu": 24 * GIB})
    assert problem is not None and "\n" not in problem
    assert "149.58 GiB" in problem and "24.00 GiB" in problem and "AdamW 59.83" in problem
    with pytest.raises(FitError):
        require_fit(scenario, {"cpu": 24 * GIB})
    tiny = Scenario(model="llama-tiny", variant="full", phase="train", batch_size=1, seq_len=8)
    assert fit_problem(tiny, {"cpu": 24 * GIB}) is None


def test_decode_needs_its_kv_cache_and_a_gpu_needs_the_host_for_the_build() -> None:
    scenario = Scenario(
        model="llama-3.2-1b", variant="full", phase="decode", batch_size=8, seq_len=1023, dtype="bf16"
    )
    gpu = dataclasses.replace(scenario, device="cuda:0")
    device, host = needs(gpu, {"cpu": 64 * GIB, "cuda:0": 80 * GIB})
    assert device.where == "cuda:0" and host.where == "host"
    assert device.parts["KV cache"] == kv_cache_bytes(model_config("llama-3.2-1b"), 8, 1024, 2)
    assert host.parts == {"fp32 base while built": parameter_count("llama-3.2-1b") * 4}
    assert "cuda:0" in fit_problem(gpu, {"cpu": 64 * GIB, "cuda:0": 2 * GIB})
