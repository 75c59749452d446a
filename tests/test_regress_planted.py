"""End to end on the ``tiny`` model: a baseline made from two measurements, then the gate measuring a
tree with a planted defect (:mod:`adapterdrop.testing_plant`). A planted slowdown in every adapter must fail
the ratio check and no deterministic one; a wider adapter must fail the deterministic checks."""

from __future__ import annotations

import pytest

from adapterdrop import testing_plant
from adapterdrop.plan import load_preset
from adapterdrop.regress.checks import DETERMINISTIC, SPEEDUP, exit_status
from adapterdrop.regress.gate import run_gate, update_baseline
from adapterdrop.regress.rules import CHANGED, OK, REGRESSION
from adapterdrop.testing_plant import Plant, parse_plant

#: the tiny model, one thread, five short rounds: what every tiny gate below measures with
TINY_SETTINGS = """
models = ["tiny"]
threads = 1

[timing]
rounds = 5
min_sample_time_s = 0.01
warmup_steps = 1
"""

TINY_GATE = (
    'description = "the gate on the tiny model"'
    + TINY_SETTINGS
    + """
[[comparison]]
name = "inference"
phases = ["infer"]
baseline = "full"
variants = ["adapter"]
batch_sizes = [8]
seq_lens = [32]

[[comparison]]
name = "training"
phases = ["train"]
baseline = "full"
variants = ["adapter"]
batch_sizes = [4]
seq_lens = [16]
"""
)


@pytest.fixture(scope="module")
def tiny_gate(tmp_path_factory):
    """The tiny preset and its baseline (two repeats of an untouched tree)."""
    path = tmp_path_factory.mktemp("gate") / "tiny-gate.toml"
    path.write_text(TINY_GATE)
    preset = load_preset(path)
    return preset, update_baseline(preset, repeats=2, name=str(path))


def test_a_slower_adapter_fails_the_ratio_gate_only(tiny_gate, monkeypatch):
    preset, baseline = tiny_gate
    # every adapter block adds busy work of 19x its layer's time: adapter layers take about 20x as long
    monkeypatch.setattr(testing_plant, "PLANT", Plant(adapter=19.0))
    rows = run_gate(baseline, preset).rows
    assert {row.scenario: row.verdict for row in rows if row.check == SPEEDUP} == {
        "inference/infer b=8 s=32 adapter": REGRESSION,
        "training/train b=4 s=16 adapter": REGRESSION,
    }
    assert all(row.verdict == OK for row in rows if row.check != SPEEDUP)  # no counted figure moved
    assert all("re-measured" in row.notes[0] for row in rows if row.check == SPEEDUP)
    assert exit_status(rows) == 1


def test_a_wider_adapter_fails_the_deterministic_checks(tiny_gate, monkeypatch):
    preset, baseline = tiny_gate
    monkeypatch.setattr(testing_plant, "PLANT", Plant(wide=2))
    rows = run_gate(baseline, preset, remeasure=False).rows
    changed = {(row.scenario.split()[-1], row.check) for row in rows if row.verdict == CHANGED}
    assert {
        ("adapter", "params_trainable"),
        ("adapter", "flops_step"),
        ("adapter", "memory_grads_bytes"),
        ("adapter", "memory_optimizer_bytes"),
    } <= changed
    assert not any(variant == "full" for variant, _ in changed)  # full has no adapter
    assert all(row.verdict == OK for row in rows if row.check.startswith(DETERMINISTIC))
    assert exit_status(rows) == 1


def test_the_plant_switch_parses_one_variable():
    assert parse_plant("") is None
    plant = parse_plant("adapter:0.2, runner:0.1 ,wide:2,lora:0.5")
    assert (plant.adapter, plant.runner, plant.wide, plant.lora) == (0.2, 0.1, 2, 0.5)
    for bad in ("adapter", "runner:-1", "wide:0", "faster:2"):
        with pytest.raises(testing_plant.PlantError):
            parse_plant(bad)


TINY_LORA_GATE = (
    'description = "the gate\'s LoRA training group on the tiny model"'
    + TINY_SETTINGS
    + """
[[comparison]]
name = "lora"
phases = ["train"]
baseline = "full"
variants = ["lora"]
batch_sizes = [4]
seq_lens = [16]
"""
)


def test_a_slower_lora_fails_the_ratio_gate(tmp_path, monkeypatch):
    path = tmp_path / "tiny-lora-gate.toml"
    path.write_text(TINY_LORA_GATE)
    preset = load_preset(path)
    baseline = update_baseline(preset, repeats=2, name=str(path))
    # every module LoRA wraps adds busy work of 19x its forward: LoRA's adapted Linears take 20x as long
    monkeypatch.setattr(testing_plant, "PLANT", Plant(lora=19.0))
    rows = run_gate(baseline, preset).rows
    assert {row.scenario: row.verdict for row in rows if row.check == SPEEDUP} == {
        "lora/train b=4 s=16 lora": REGRESSION
    }
    assert exit_status(rows) == 1
