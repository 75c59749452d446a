"""The results store and the record schema: keys, round trips, corrupt and torn lines."""

from __future__ import annotations

import dataclasses
import json

import pytest

from adapterdrop.results import ResultsFileError, append_records, finished_keys, load_records
from adapterdrop.scenario import Record, Scenario, ScenarioError, default_precision


def scenario(**overrides) -> Scenario:
    fields = dict(
        model="tiny",
        variant="adapter",
        phase="train",
        batch_size=2,
        seq_len=8,
        threads=1,
        comparison="c",
        baseline="full",
    )
    fields.update(overrides)
    return Scenario(**fields)


def record(status: str = "ok", **overrides) -> Record:
    return Record.for_scenario(scenario(**overrides), status, time_median_s=0.5, time_samples_s=[0.5, 0.6])


def test_key_identifies_every_scenario_field():
    base = scenario()
    assert base.key == scenario().key
    keys = {base.key}
    for name, value in [
        ("variant", "full"),
        ("phase", "infer"),
        ("batch_size", 4),
        ("seq_len", 16),
        ("device", "cuda:1"),
        ("dtype", "bf16"),
        ("threads", 2),
        ("comparison", "d"),
        ("baseline", "adapter"),
    ]:
        changed = dataclasses.replace(base, **{name: value})
        if name == "dtype":
            changed = dataclasses.replace(changed, precision="autocast")
        keys.add(changed.key)
    assert len(keys) == 10


def test_group_ignores_only_the_variant():
    assert scenario(variant="full").group == scenario(variant="adapter").group
    assert scenario(batch_size=4).group != scenario().group


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"batch_size": 0}, "batch size"),
        ({"phase": "eval"}, "phase"),
        ({"dtype": "fp8"}, "dtype"),
        ({"precision": "autocast"}, "fp32 has no autocast"),
        ({"seq_len": True}, "seq len"),
    ],
)
def test_scenario_rejects_bad_values(overrides, message):
    with pytest.raises(ScenarioError, match=message):
        scenario(**overrides)


def test_default_precision():
    assert default_precision("train", "bf16") == "autocast"
    assert default_precision("infer", "fp16") == "native"
    assert default_precision("train", "fp32") == "native"
    assert default_precision("train", "fp32", "autocast") == "native"
    assert default_precision("train", "bf16", "native") == "native"


def test_round_trip(tmp_path):
    path = tmp_path / "sub" / "results.jsonl"
    first, second = record(), record(variant="full", status="oom")
    append_records(path, [first])
    append_records(path, [second])
    loaded = load_records(path)
    assert [r.to_dict() for r in loaded] == [first.to_dict(), second.to_dict()]
    assert loaded[0].scenario == scenario()
    assert finished_keys(loaded) == {first.key, second.key}


def test_error_records_are_not_finished():
    assert finished_keys([record(status="error"), record(status="skipped", variant="x")]) == {
        scenario(variant="x").key
    }


def test_missing_file(tmp_path):
    assert load_records(tmp_path / "none.jsonl", missing_ok=True) == []
    with pytest.raises(ResultsFileError, match="no such results file"):
        load_records(tmp_path / "none.jsonl")


def test_corrupt_line_is_named(tmp_path):
    path = tmp_path / "results.jsonl"
    append_records(path, [record()])
    with open(path, "a") as handle:
        handle.write("{not json\n")
    append_records(path, [record(variant="full")])
    with pytest.raises(ResultsFileError, match=r"results\.jsonl:2: not valid JSON"):
        load_records(path)


def test_json_that_is_not_a_record_is_named(tmp_path):
    path = tmp_path / "results.jsonl"
    data = record().to_dict()
    del data["batch_size"]
    path.write_text(json.dumps(record().to_dict()) + "\n" + json.dumps(data) + "\n")
    with pytest.raises(ResultsFileError, match=r":2: not a valid record: missing field\(s\) batch_size"):
        load_records(path)
    data = {**record().to_dict(), "batch_size": 0}
    path.write_text(json.dumps(data) + "\n")
    with pytest.raises(ResultsFileError, match=":1: not a valid record: batch size must be a positive"):
        load_records(path)


def test_torn_last_line_is_ignored_then_cut(tmp_path):
    path = tmp_path / "results.jsonl"
    append_records(path, [record()])
    whole = path.read_text()
    with open(path, "a") as handle:
        handle.write(whole[: len(whole) // 2])  # a write killed half-way
    with pytest.warns(UserWarning, match="incomplete last line"):
        assert len(load_records(path)) == 1
    append_records(path, [record(variant="full")])
    assert [r.variant for r in load_records(path)] == ["adapter", "full"]


def test_complete_last_line_without_newline_is_kept(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(record().to_dict()))
    append_records(path, [record(variant="full")])
    assert [r.variant for r in load_records(path)] == ["adapter", "full"]
