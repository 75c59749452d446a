"""Variant names, options, presets and the parameter counts they imply."""

from __future__ import annotations

import pytest
import torch

from adapterdrop.backends import build_variant, list_variants, parse_variant
from adapterdrop.errors import AdapterDropError, UnknownPresetError, UnsupportedModelError, VariantError
from adapterdrop.models.encoder import build_base
from adapterdrop.models.presets import PRESETS, model_config


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("adapter", "adapter"),
        ("adapter:reduction=16", "adapter"),
        ("adapter:placement=houlsby,reduction=8", "adapter:placement=houlsby,reduction=8"),
        ("adapterdrop:robust", "adapterdrop:robust"),
        ("adapterdrop: n=5 ", "adapterdrop:n=5"),
        ("parallel:n=2,tasks=8", "parallel:tasks=8,n=2"),
        ("fusion:adapters=8,keep=2", "fusion:adapters=8,keep=2"),
        # act defaults to the placement's non-linearity (AdapterHub: seq_bn relu, double_seq_bn swish)
        ("adapter:act=relu", "adapter"),
        ("adapter:act=swish", "adapter:act=swish"),
        ("adapter:placement=houlsby,act=swish", "adapter:placement=houlsby"),
        ("adapter:placement=houlsby,act=relu", "adapter:placement=houlsby,act=relu"),
        ("parallel:tasks=2,placement=houlsby,act=swish", "parallel:tasks=2,placement=houlsby"),
        ("fusion:adapters=2,act=relu", "fusion:adapters=2"),
    ],
)
def test_canonical_names(text, canonical):
    assert parse_variant(text).canonical == canonical
    assert parse_variant(canonical).values == parse_variant(text).values


@pytest.mark.parametrize(
    ("text", "act"),
    [("adapter", "relu"), ("adapter:placement=houlsby", "swish"), ("fusion:adapters=2", "relu")],
)
def test_activation_defaults_to_the_placement(text, act):
    assert parse_variant(text)["act"] == act


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("adaptr", "unknown variant 'adaptr'; valid: full, adapter, adapterdrop, parallel, separate, fusion"),
        ("adapter:size=3", "unknown option 'size' for variant 'adapter'; valid: placement, reduction, act"),
        ("adapter:placement=middle", "takes one of pfeiffer, houlsby, not 'middle'"),
        ("adapterdrop:n=x", "option 'n' of 'adapterdrop' takes an integer, not 'x'"),
        ("parallel:tasks=0", "option 'tasks' of 'parallel' must be >= 1, not 0"),
        ("parallel:n=2", "variant 'parallel' needs option 'tasks'"),
        ("adapterdrop:robust=maybe", "takes true or false"),
    ],
)
def test_bad_names_give_one_clear_line(text, message):
    with pytest.raises(VariantError) as caught:
        parse_variant(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("adapterdrop:n=5", "n=5 is out of range for 'adapterdrop' on a 4-layer model (0..4)"),
        ("adapterdrop", "variant 'adapterdrop' needs n=K (specialized) or robust"),
        ("parallel:tasks=2,n=9", "n=9 is out of range"),
        ("fusion:adapters=3,keep=4", "keep=4 is out of range for fusion over 3 adapters (1..3)"),
    ],
)
def test_options_out_of_range_for_the_model(text, message):
    config = model_config("tiny")
    with pytest.raises(
        VariantError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")
    ):
        build_variant(text, config)


def test_every_variant_is_listed_with_its_options():
    listed = {info.name: info for info in list_variants()}
    native = ["full", "adapter", "adapterdrop", "parallel", "separate", "fusion"]
    peft = ["lora", "dora", "rslora", "ia3", "vera", "loha", "lokr", "prefix", "prompt"]
    assert list(listed) == [*native, *peft, "serve"]
    assert {o.name for o in listed["fusion"].options} >= {"adapters", "keep", "n", "prune", "calib", "impl"}
    assert all(option.help for info in listed.values() for option in info.options)


def test_unknown_preset_names_the_valid_ones():
    with pytest.raises(UnknownPresetError, match="unknown model preset 'bert-huge'; valid: tiny, bert-small"):
        model_config("bert-huge")


def test_config_file_of_another_family_is_refused(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"model_type": "gpt2", "n_layer": 2}')
    with pytest.raises(UnsupportedModelError, match="model type 'gpt2' is not supported"):
        model_config(str(path))
    assert issubclass(UnsupportedModelError, AdapterDropError)


def test_config_file_of_a_bert_family_model_builds(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(
        '{"model_type": "roberta", "num_hidden_layers": 2, "hidden_size": 16, "num_attention_heads": 2,'
        ' "intermediate_size": 32, "vocab_size": 50}'
    )
    config = model_config(str(path))
    model = build_variant("adapter", config)
    assert len(model.base.encoder.layer) == 2


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_builds(name):
    config = model_config(name)
    with torch.device("meta"):
        base = build_base(config)
    assert len(base.encoder.layer) == config.num_hidden_layers
    assert base.encoder.layer[0].attention.self.query.in_features == config.hidden_size


def adapter_parameter_count(model) -> int:
    return sum(p.numel() for p in model.plugins.parameters())


@pytest.mark.parametrize(("placement", "per_layer"), [("pfeiffer", 1), ("houlsby", 2)])
def test_adapter_parameters_on_bert_base_match_the_closed_form(placement, per_layer):
    """AdapterHub's seq_bn on bert-base has 894,528 adapter parameters, L·(2hb + b + h): the arrangement
    reuses the layer's LayerNorm and adds none of its own; double_seq_bn has twice that."""
    config = model_config("bert-base")
    with torch.device("meta"):
        model = build_variant(f"adapter:placement={placement}", config)
    layers, hidden, bottleneck = 12, 768, 48
    one_adapter = hidden * bottleneck + bottleneck + bottleneck * hidden + hidden
    assert layers * one_adapter == 894_528
    assert adapter_parameter_count(model) == per_layer * layers * one_adapter
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    head = hidden * hidden + hidden + hidden * 2 + 2
    assert trainable == per_layer * layers * one_adapter + head


def test_specialized_adapterdrop_has_no_adapters_below_n():
    config = model_config("bert-base")
    with torch.device("meta"):
        model = build_variant("adapterdrop:n=5", config)
    assert sorted(int(i) for i in model.plugins) == list(range(5, 12))
    assert adapter_parameter_count(model) == 7 * (2 * 768 * 48 + 48 + 768)


def test_fusion_parameters_on_bert_base_match_bert_fusion():
    """Per layer N adapters plus BertFusion's query and key (with bias) and value (without): 3h² + 2h."""
    config = model_config("bert-base")
    with torch.device("meta"):
        model = build_variant("fusion:adapters=8", config)
    hidden = 768
    fusion = sum(p.numel() for plugin in model.plugins.values() for p in plugin.fusion.parameters())
    assert fusion == 12 * (3 * hidden * hidden + 2 * hidden)
    assert adapter_parameter_count(model) == fusion + 8 * 894_528
