"""The backend seam: every stored record keeps its key, each variant has one backend, and the adapter
patterns a backend declares find its adapters."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from adapterdrop.backends import BACKENDS, REGISTRY, backend_of, build_variant, parse_variant
from adapterdrop.measure.prepare import group_context, prepare_step
from adapterdrop.models.presets import model_config
from adapterdrop.profile.breakdown import parameter_counts
from adapterdrop.results import load_records
from adapterdrop.scenario import Scenario

QUICK = Path(__file__).resolve().parents[1] / "reports" / "quick" / "quick.jsonl"


def test_every_stored_key_is_recomputed_equal() -> None:
    """Re-parsing every variant of the committed quick report and re-hashing its scenario gives back the
    stored key and group (the seam changed no name, option, default or order)."""
    records = load_records(QUICK)
    assert len(records) >= 20
    for record in records:
        canonical = parse_variant(record.variant).canonical
        assert canonical == record.variant
        for name in ("variant", "baseline"):
            value = getattr(record, name)
            assert not value or parse_variant(value).canonical == value
        scenario = dataclasses.replace(record.scenario, variant=canonical)
        assert (scenario.key, scenario.group) == (record.key, record.group), record.variant


def test_each_variant_has_one_backend_in_registry_order() -> None:
    names = [info.name for backend in BACKENDS.values() for info in backend.variants]
    assert names == list(REGISTRY)
    assert backend_of("adapterdrop:n=3").name == "native"


def test_native_patterns_find_adapters_and_fusion() -> None:
    native = BACKENDS["native"]
    assert native.adapter_place("plugins.3.ffn.down.weight") == (3, "adapter")
    assert native.adapter_place("plugins.11.fusion.query.weight") == (11, "fusion")
    assert native.adapter_place("base.encoder.layer.3.attention.self.query.weight") is None
    config = model_config("tiny")
    model = build_variant("adapterdrop:n=1", config)
    counts = parameter_counts(model)
    assert ("layer.0", "adapter") not in counts
    assert counts[("layer.1", "adapter")][1] > 0


@pytest.mark.parametrize("variant", ["full", "adapter"])
def test_prepare_step_is_callable_as_before(variant: str) -> None:
    """``group_context`` / ``prepare_step`` keep the signature ``regress --against`` calls on any revision."""
    scenario = Scenario(model="tiny", variant=variant, phase="train", batch_size=2, seq_len=8)
    prepared = prepare_step(scenario, group_context(scenario))
    prepared.step()
    assert prepared.optimizer_name.startswith("AdamW")
