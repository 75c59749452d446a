"""What the multi-task variants compute: parallel inference, separate models, AdapterFusion, pruning."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from helpers_models import (
    DYNAMIC_FUSION,
    SEQ_BN,
    adapter_weights,
    adapterhub_fusion_layer,
    adapterhub_reference,
    fusion_weights,
    loud,
    token_ids,
)

from adapterdrop.backends import build_variant, parse_variant
from adapterdrop.models.encoder import build_base, encode, num_layers, plugins_by_layer
from adapterdrop.variants.fusion import build_unpruned

TASKS = 3


def infer(model, ids):
    model.eval()
    with torch.inference_mode():
        return model(ids)


@pytest.mark.parametrize("impl", ["bmm", "loop"])
@pytest.mark.parametrize("placement", ["pfeiffer", "houlsby"])
@pytest.mark.parametrize("dropped", [0, 2, 4])
def test_parallel_gives_each_task_its_single_model_logits(config, base, impl, placement, dropped):
    options = f"tasks={TASKS},n={dropped},placement={placement}"
    parallel = build_variant(f"parallel:{options},impl={impl}", config, base=base, seed=4)
    separate = build_variant(f"separate:{options}", config, base=base, seed=4)
    ids = token_ids(config)
    together = infer(parallel, ids)
    assert together.shape == (TASKS, 3, 2)
    for task, single in enumerate(separate.tasks):
        assert torch.allclose(together[task], infer(single, ids), atol=1e-5, rtol=1e-4), task
    assert torch.allclose(together, infer(separate, ids), atol=1e-5, rtol=1e-4)
    if dropped < 4:  # tasks really differ, so a mix-up of tasks would fail the comparison
        assert not torch.allclose(together[0], together[1], atol=1e-5)


def test_parallel_runs_shared_layers_once(config, base):
    """Layers 0..K see the batch once; the layers above see N copies of it (Pfeiffer placement)."""
    parallel = build_variant(f"parallel:tasks={TASKS},n=2", config, base=base)
    rows = {}
    handles = [
        layer.attention.self.query.register_forward_hook(lambda m, i, o, k=k: rows.update({k: i[0].shape[0]}))
        for k, layer in enumerate(base.encoder.layer)
    ]
    infer(parallel, token_ids(config, batch=5))
    for handle in handles:
        handle.remove()
    assert rows == {0: 5, 1: 5, 2: 5, 3: 5 * TASKS}


def test_parallel_and_separate_are_inference_only(config, base):
    for name in (f"parallel:tasks={TASKS}", f"separate:tasks={TASKS}"):
        assert not build_variant(name, config, base=base).supports_training


@pytest.mark.parametrize(
    "variant", ["fusion:adapters=3,n=1", "fusion:adapters=3,impl=loop", "fusion:adapters=4,keep=2"]
)
def test_fusion_computes_adapterhub_bert_fusion(config, rough_base, variant):
    """Fusion is AdapterHub's ``Fuse`` over ``seq_bn`` adapters with ``BertFusion`` (dynamic defaults): query
    LN(x + r), keys and values from the up-projections without residual, x added after fusion, then
    LN(. + r)."""
    model = build_variant(variant, config, base=rough_base, seed=5)
    loud(model.plugins, seed=5)
    closers = {}
    for layer, plugin in model.plugins.items():
        adapters = [adapter_weights(plugin.bank.adapter(i)) for i in range(plugin.bank.size)]
        close = partial(
            adapterhub_fusion_layer, SEQ_BN, DYNAMIC_FUSION, adapters, fusion_weights(plugin.fusion)
        )
        closers[int(layer)] = {"ffn": close}
    ids = token_ids(config)
    model.eval()
    with torch.inference_mode():
        ours = encode(rough_base, ids, None, plugins_by_layer(model.plugins, num_layers(rough_base)))
        expected = adapterhub_reference(rough_base, closers)(input_ids=ids).last_hidden_state
        bare = rough_base(input_ids=ids).last_hidden_state
    # loud weights and a sharp softmax: float32 rounding reaches 2e-5 on values up to 5 after four layers
    assert torch.allclose(ours, expected, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(bare, expected, atol=1e-2)


def test_fusion_keeping_every_adapter_equals_unpruned(config, base):
    spec = "fusion:adapters=4,n=1"
    unpruned = build_variant(spec, config, base=base, seed=6)
    ids = token_ids(config)
    scores = unpruned.calibrate([token_ids(config, seed=s) for s in range(2)])
    pruned = unpruned.pruned(scores, keep=4, mode="global", spec=unpruned.spec)
    assert torch.equal(infer(pruned, ids), infer(unpruned, ids))
    fewer = unpruned.pruned(scores, keep=2, mode="global", spec=unpruned.spec)
    assert not torch.allclose(infer(fewer, ids), infer(unpruned, ids), atol=1e-6)


def constructed_fusion(config, base, impl, favourites):
    """Fusion whose adapter i in layer l has the up-projection ``c[l][i]·u`` (whatever its input), key = that
    up-projection and query = u, so its fusion score is c[l][i]."""
    model = build_variant(f"fusion:adapters=4,impl={impl}", config, base=base, seed=0)
    hidden = config.hidden_size
    direction = torch.zeros(hidden)
    direction[0] = 1.0
    with torch.no_grad():
        for layer, plugin in model.plugins.items():
            strengths = favourites[int(layer)]
            fusion = plugin.fusion
            fusion.query.weight.zero_()
            fusion.query.bias.copy_(direction)
            fusion.key.weight.copy_(torch.eye(hidden))
            fusion.key.bias.zero_()
            for index in range(4):
                adapter = plugin.bank.adapter(index)
                adapter.down.weight.zero_()
                adapter.down.bias.zero_()
                adapter.up.bias.copy_(strengths[index] * direction)
                if impl == "loop":
                    plugin.bank.adapters[index].load_state_dict(adapter.state_dict())
                else:
                    plugin.bank.w_down[index].zero_()
                    plugin.bank.b_down[index].zero_()
                    plugin.bank.b_up[index, 0].copy_(adapter.up.bias)
    return model


@pytest.mark.parametrize("impl", ["bmm", "loop"])
def test_pruning_keeps_the_most_activated_adapters(config, base, impl):
    favourites = {0: [0, 6, 0, 9], 1: [7, 0, 8, 0], 2: [0, 5, 0, 9], 3: [0, 6, 0, 8]}
    model = constructed_fusion(config, base, impl, favourites)
    scores = model.calibrate([token_ids(config, seed=s) for s in range(2)])
    per_layer = model.pruned(scores, keep=2, mode="layer", spec=model.spec)
    assert per_layer.describe()["kept_adapters"] == {0: [1, 3], 1: [0, 2], 2: [1, 3], 3: [1, 3]}
    # averaged over layers adapter 2 (weight ~0.73 in layer 1 alone) outranks adapter 1 (~0.05 to ~0.12
    # in three layers, next to a stronger adapter 3), so the global choice differs from most layers' own
    overall = model.pruned(scores, keep=2, mode="global", spec=model.spec)
    assert overall.describe()["kept_adapters"] == {layer: [2, 3] for layer in range(4)}


def test_pruned_adapters_are_not_called(config, base):
    model = build_variant("fusion:adapters=4,impl=loop", config, base=base, seed=0)
    scores = model.calibrate([token_ids(config)])
    pruned = model.pruned(scores, keep=2, mode="layer", spec=model.spec)
    calls: dict[tuple[int, int], int] = {}
    handles = []
    for layer, plugin in model.plugins.items():
        for index, adapter in enumerate(plugin.bank.adapters):
            key = (int(layer), index)
            calls[key] = 0
            count = lambda *_, k=key: calls.__setitem__(k, calls[k] + 1)  # noqa: E731
            handles.append(adapter.register_forward_hook(count))
    infer(pruned, token_ids(config))
    for handle in handles:
        handle.remove()
    kept = pruned.describe()["kept_adapters"]
    for (layer, index), count in calls.items():
        assert count == (1 if index in kept[layer] else 0), (layer, index, count)


def test_fusion_pruned_bmm_bank_holds_only_kept_weights(config, base):
    model = build_variant("fusion:adapters=4", config, base=base, seed=0)
    scores = model.calibrate([token_ids(config)])
    pruned = model.pruned(scores, keep=2, mode="layer", spec=model.spec)
    for layer, plugin in pruned.plugins.items():
        full_bank = model.plugins[layer].bank
        assert plugin.bank.w_down.shape[0] == 2
        assert torch.equal(plugin.bank.w_down, full_bank.w_down[plugin.adapter_ids])


def test_fusion_training_leaves_adapters_and_encoder_unchanged(config, base):
    model = build_variant("fusion:adapters=3,keep=2,n=1", config, base=base, seed=0).train()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    model.loss(token_ids(config), torch.tensor([1, 0, 1])).backward()
    optimizer.step()
    for name, p in model.named_parameters():
        changed = not torch.equal(before[name], p.detach())
        assert changed == (".fusion." in name or name.startswith("head.")), name


def test_fusion_adapterdrop_has_no_fusion_below_n(config, base):
    model = build_variant("fusion:adapters=2,n=3", config, base=base)
    assert sorted(int(i) for i in model.plugins) == [3]


def test_unpruned_builder_matches_variant(config, base):
    spec = parse_variant("fusion:adapters=2")
    ids = token_ids(config)
    built = build_variant(spec, config, base=base, seed=9)
    assert torch.equal(infer(build_unpruned(spec, base, 9), ids), infer(built, ids))


def test_pruned_fusion_builds_on_a_bf16_encoder(config):
    """Calibration runs in the encoder's dtype (the harness casts the base before building variants)."""
    base = build_base(config).to(torch.bfloat16).eval()
    model = build_variant("fusion:adapters=3,keep=2", config, base=base, seed=0)
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    assert infer(model, token_ids(config)).dtype == torch.bfloat16
