"""What the single-task variants compute: full, adapter, AdapterDrop (specialized and robust)."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from helpers_models import (
    DOUBLE_SEQ_BN,
    SEQ_BN,
    adapter_weights,
    adapterhub_adapter_layer,
    adapterhub_reference,
    loud,
    tiny_config,
    token_ids,
)

from adapterdrop.backends import build_variant
from adapterdrop.models.encoder import LayerPlugin, build_base, encode

LAYERS = 4


def logits(model, ids):
    model.eval()
    with torch.inference_mode():
        return model(ids)


def test_adapterdrop_n0_equals_adapter_bit_for_bit(config, base):
    ids = token_ids(config)
    adapter = build_variant("adapter", config, base=base, seed=3)
    dropped = build_variant("adapterdrop:n=0", config, base=base, seed=3)
    assert torch.equal(logits(adapter, ids), logits(dropped, ids))


@pytest.mark.parametrize("model_type", ["bert", "roberta", "xlm-roberta", "electra"])
def test_dropping_every_adapter_equals_frozen_encoder_plus_head(model_type):
    extra = {"embedding_size": 16} if model_type == "electra" else {}
    config = tiny_config(model_type, **extra)
    base = build_base(config, seed=1).eval()
    ids = token_ids(config)
    dropped = build_variant(f"adapterdrop:n={LAYERS}", config, base=base, seed=5).eval()
    with torch.inference_mode():
        reference = dropped.head(base(input_ids=ids).last_hidden_state)
    assert torch.allclose(logits(dropped, ids), reference, atol=1e-5, rtol=1e-5)
    # the comparison can fail: with adapters in place the logits differ from the bare encoder
    adapter = build_variant("adapter", config, base=base, seed=5)
    assert not torch.allclose(logits(adapter, ids), reference, atol=1e-5, rtol=1e-5)


def test_default_plugin_closes_each_block_like_transformers(config, base):
    """The hooks' default LN(x + r) is the `transformers` layer: a plug-in that overrides nothing is inert."""
    ids = token_ids(config)
    with torch.inference_mode():
        ours = encode(base, ids, None, [LayerPlugin() for _ in range(LAYERS)])
        assert torch.allclose(ours, base(input_ids=ids).last_hidden_state, atol=1e-5, rtol=1e-5)


def last_hidden(model, ids):
    """The encoder output of a single-task adapter model (its inference ``n``)."""
    model.eval()
    with torch.inference_mode():
        return encode(model.base, ids, None, model.layer_plugins(model.inference_drop))


def adapterhub_hidden(base, closers, ids):
    with torch.inference_mode():
        return adapterhub_reference(base, closers)(input_ids=ids).last_hidden_state


def test_pfeiffer_computes_adapterhub_seq_bn(config, rough_base):
    """``pfeiffer`` is AdapterHub's ``seq_bn``: LN(f(LN(x + r)) + x + r), relu, after the FFN."""
    model = build_variant("adapterdrop:n=1", config, base=rough_base, seed=3)
    loud(model.plugins, seed=3)
    assert all(plugin.attention is None for plugin in model.plugins.values())
    closers = {
        int(i): {"ffn": partial(adapterhub_adapter_layer, SEQ_BN, adapter_weights(plugin.ffn))}
        for i, plugin in model.plugins.items()
    }
    assert sorted(closers) == [1, 2, 3]
    ids = token_ids(config)
    expected = adapterhub_hidden(rough_base, closers, ids)
    assert torch.allclose(last_hidden(model, ids), expected, atol=1e-5, rtol=1e-5)
    # the adapters matter: the bare encoder is far from it
    assert not torch.allclose(adapterhub_hidden(rough_base, {}, ids), expected, atol=1e-2)


def test_houlsby_computes_adapterhub_double_seq_bn(config, rough_base):
    """``houlsby`` is AdapterHub's ``double_seq_bn``: LN(f(x) + x + r) after attention and after the
    feed-forward block, swish by default."""
    model = build_variant("adapter:placement=houlsby", config, base=rough_base, seed=4)
    loud(model.plugins, seed=4)
    closers = {
        int(i): {
            "attention": partial(adapterhub_adapter_layer, DOUBLE_SEQ_BN, adapter_weights(plugin.attention)),
            "ffn": partial(adapterhub_adapter_layer, DOUBLE_SEQ_BN, adapter_weights(plugin.ffn)),
        }
        for i, plugin in model.plugins.items()
    }
    assert sorted(closers) == list(range(LAYERS))
    ids = token_ids(config)
    expected = adapterhub_hidden(rough_base, closers, ids)
    assert torch.allclose(last_hidden(model, ids), expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(adapterhub_hidden(rough_base, {}, ids), expected, atol=1e-2)


@pytest.mark.parametrize("variant", ["adapter", "adapter:placement=houlsby", "adapterdrop:n=2"])
def test_adapter_training_updates_only_adapters_and_head(config, base, variant):
    model = build_variant(variant, config, base=base, seed=0).train()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    ids = token_ids(config)
    model.loss(ids, torch.tensor([0, 1, 1])).backward()
    grads = {name for name, p in model.named_parameters() if p.grad is not None}
    assert grads, "no parameter received a gradient"
    assert all(name.startswith(("plugins.", "head.")) for name in grads), grads
    optimizer.step()
    for name, p in model.named_parameters():
        changed = not torch.equal(before[name], p.detach())
        assert changed == name.startswith(("plugins.", "head.")), name


def test_full_fine_tuning_trains_everything_on_its_own_copy(config, base):
    model = build_variant("full", config, base=base).train()
    assert model.base is not base
    assert all(p.requires_grad for p in model.parameters())
    assert not any(p.requires_grad for p in base.parameters())
    model.loss(token_ids(config), torch.tensor([0, 1, 1])).backward()
    assert all(p.grad is not None for p in model.base.encoder.parameters())


def saved_tensors_per_layer(model, ids, labels):
    """Backward-saved tensors per encoder layer index, found with forward pre-hooks + saved-tensor hooks."""
    current = {"layer": -1}
    counts: dict[int, int] = {}
    handles = []
    for index, layer in enumerate(model.base.encoder.layer):
        for module in layer.modules():
            handles.append(module.register_forward_pre_hook(lambda *_, i=index: current.update(layer=i)))

    def pack(tensor):
        counts[current["layer"]] = counts.get(current["layer"], 0) + 1
        return tensor

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = model.loss(ids, labels)
    finally:
        for handle in handles:
            handle.remove()
    return counts, loss


@pytest.mark.parametrize("dropped", [1, 3])
def test_dropped_layers_build_no_autograd_graph(config, base, dropped):
    model = build_variant(f"adapterdrop:n={dropped}", config, base=base).train()
    counts, loss = saved_tensors_per_layer(model, token_ids(config), torch.tensor([0, 1, 1]))
    assert loss.requires_grad
    assert all(layer >= dropped for layer in counts if layer >= 0), counts
    assert counts.get(dropped, 0) > 0, counts  # the first adapter's layer keeps what its backward needs


def test_dropped_layer_outputs_do_not_require_grad(config, base):
    model = build_variant("adapterdrop:n=2", config, base=base).train()
    requires = {}
    handles = [
        layer.output.LayerNorm.register_forward_hook(
            lambda m, i, out, k=k: requires.update({k: out.requires_grad})
        )
        for k, layer in enumerate(model.base.encoder.layer)
    ]
    model.loss(token_ids(config), torch.tensor([0, 1, 1]))
    for handle in handles:
        handle.remove()
    assert requires == {0: False, 1: False, 2: True, 3: True}


def test_full_fine_tuning_keeps_activations_of_every_layer(config, base):
    model = build_variant("full", config, base=base).train()
    counts, _ = saved_tensors_per_layer(model, token_ids(config), torch.tensor([0, 1, 1]))
    assert all(counts.get(layer, 0) > 0 for layer in range(LAYERS)), counts


def test_robust_adapterdrop_draws_vary_and_repeat_with_the_seed(config, base):
    ids, labels = token_ids(config), torch.tensor([0, 1, 1])
    draws = []
    for _ in range(2):
        model = build_variant("adapterdrop:robust", config, base=base, seed=7).train()
        for _ in range(30):
            model.loss(ids, labels)
        draws.append(model.drawn)
    assert draws[0] == draws[1]
    assert set(draws[0]) == set(range(LAYERS))  # [0, L-1]: every n shows up in 30 draws of 4 values
    other = build_variant("adapterdrop:robust", config, base=base, seed=8).train()
    for _ in range(30):
        other.loss(ids, labels)
    assert other.drawn != draws[0]


def test_robust_draw_sets_the_computation(config, base):
    """A training step with drawn n computes what the specialized n model computes (same weights)."""
    robust = build_variant("adapterdrop:robust,max=3", config, base=base, seed=2).eval()
    ids = token_ids(config)
    for drop in range(LAYERS + 1):
        with torch.inference_mode():
            out = robust.logits(ids, None, drop)
        reference = build_variant(f"adapterdrop:n={drop}", config, base=base, seed=2)
        reference.load_state_dict(robust.state_dict(), strict=False)
        assert torch.allclose(out, logits(reference, ids)), drop


def test_robust_inference_uses_fixed_n(config, base):
    ids = token_ids(config)
    robust = build_variant("adapterdrop:robust,n=2", config, base=base, seed=2)
    with torch.inference_mode():
        expected = robust.eval().logits(ids, None, 2)
    assert torch.equal(logits(robust, ids), expected)
    assert robust.drawn == []
