"""The decoder workloads as scenario phases: no stored key changes, inference precision for prefill and
decode."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapterdrop.results import load_records
from adapterdrop.scenario import PHASES, Scenario, ScenarioError, default_precision

QUICK = Path(__file__).resolve().parents[1] / "reports" / "quick" / "quick.jsonl"


def test_every_quick_record_keeps_its_key_and_group() -> None:
    records = load_records(QUICK)
    assert len(records) >= 20
    for record in records:
        scenario = record.scenario
        assert (scenario.key, scenario.group) == (record.key, record.group), record.variant


def test_decoder_phases_are_scenarios() -> None:
    assert PHASES == ("train", "infer", "prefill", "decode")
    decode = Scenario(model="llama-tiny", variant="full", phase="decode", batch_size=1, seq_len=8)
    assert (
        decode.key
        != Scenario(model="llama-tiny", variant="full", phase="prefill", batch_size=1, seq_len=8).key
    )
    with pytest.raises(ScenarioError, match="unknown phase 'generate'"):
        Scenario(model="llama-tiny", variant="full", phase="generate", batch_size=1, seq_len=8)


@pytest.mark.parametrize(
    ("phase", "precision"),
    [("train", "autocast"), ("infer", "native"), ("prefill", "native"), ("decode", "native")],
)
def test_only_training_defaults_to_autocast(phase: str, precision: str) -> None:
    assert default_precision(phase, "bf16") == precision
    assert default_precision(phase, "fp32") == "native"
