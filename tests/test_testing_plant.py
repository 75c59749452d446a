"""The planted slowdowns of :mod:`adapterdrop.testing_plant` change time only: a ``runner`` plant spins
after every layer's forward and at the end of every layer's backward, and leaves every gradient as it was."""

from __future__ import annotations

import pytest
import torch
from helpers_models import token_ids

from adapterdrop import testing_plant
from adapterdrop.backends import build_variant
from adapterdrop.testing_plant import Plant

LABELS = torch.tensor([0, 1, 1])


def _step(variant, config, base, monkeypatch, plant):
    """One forward + backward of ``variant``; the gradients and the spins the plant made (seconds asked)."""
    spins: list[float] = []
    monkeypatch.setattr(testing_plant, "spin", spins.append)
    monkeypatch.setattr(testing_plant, "PLANT", plant)
    model = build_variant(variant, config, base=base, seed=0).train()
    model.loss(token_ids(config), LABELS).backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return grads, spins


@pytest.mark.parametrize(
    ("variant", "backward_layers"), [("full", 4), ("adapter", 3), ("adapterdrop:n=2", 1)]
)
def test_a_runner_plant_spins_after_each_layer_forward_and_backward(
    variant, backward_layers, config, base, monkeypatch
):
    plain, none = _step(variant, config, base, monkeypatch, None)
    planted, spins = _step(variant, config, base, monkeypatch, Plant(runner=0.5))
    assert none == []
    # 4 layers forward; backward in every layer whose input needs a gradient: all 4 for full (the
    # embeddings train), layers 1-3 for adapter (the frozen embeddings feed layer 0), layer 3 only under
    # n=2 (layer 2's input comes from the layers without adapters)
    assert len(spins) == 4 + backward_layers and all(seconds >= 0 for seconds in spins)
    assert planted.keys() == plain.keys()
    assert all(torch.equal(planted[name], plain[name]) for name in plain)  # identity: same gradients


def test_an_adapter_plant_spins_in_adapter_blocks_only(config, base, monkeypatch):
    _, spins = _step("full", config, base, monkeypatch, Plant(adapter=0.5))
    assert spins == []
    _, spins = _step("adapter", config, base, monkeypatch, Plant(adapter=0.5))
    assert len(spins) == 4  # one Pfeiffer adapter per layer, forward only
