"""The results store and the record schema: keys, round trips, corrupt and torn lines."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from adapterdrop.results import (
    ResultsFileError,
    TornLineWarning,
    append_records,
    check_writable,
    finished_keys,
    latest_runs,
    load_records,
)
from adapterdrop.scenario import Record, Scenario, ScenarioError, default_precision

REPO = Path(__file__).resolve().parent.parent


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


V1_FILES = sorted((REPO / "reports").glob("**/*.jsonl"))


@pytest.mark.parametrize("path", V1_FILES, ids=lambda p: p.name)
def test_keys_of_files_written_before_the_key_change_still_resume(path):
    """Every stored record's key is the key its scenario has today: a rerun skips it (resume holds)."""
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    assert lines
    for data, loaded in zip(lines, load_records(path), strict=True):
        assert loaded.scenario.key == data["key"], data["variant"]


def test_a_new_defaulted_field_leaves_keys_as_they_were(monkeypatch):
    """A field outside schema 1 is hashed only when it differs from its default: with `comparison` taken
    out of the schema-1 set, a scenario at the default comparison keeps the key it would have without the
    field, and a non-default value changes it."""
    import hashlib

    from adapterdrop import scenario as scenario_module

    at_default = scenario(comparison="adhoc")
    kept = scenario_module.KEY_FIELDS_V1 - {"comparison"}  # later fields sit at their defaults here
    legacy = {k: v for k, v in dataclasses.asdict(at_default).items() if k in kept}
    text = json.dumps(legacy, sort_keys=True, separators=(",", ":"))
    monkeypatch.setattr(scenario_module, "KEY_FIELDS_V1", scenario_module.KEY_FIELDS_V1 - {"comparison"})
    assert at_default.key == hashlib.sha1(text.encode()).hexdigest()
    assert scenario(comparison="other").key != at_default.key


def test_schema_1_records_get_a_run_per_group_and_creation_time(tmp_path):
    old = [{**record().to_dict(), "schema": 1, "run_id": "", "created_at": t} for t in ("t1", "t1", "t2")]
    old[1]["variant"], old[1]["key"] = "full", scenario(variant="full").key
    path = tmp_path / "v1.jsonl"
    path.write_text("".join(json.dumps(data) + "\n" for data in old))
    first, second, third = load_records(path)
    assert first.run_id == second.run_id != third.run_id and first.run_id.startswith("v1-")


def run_records(run_id: str, created: str, variants: list[str]) -> list[Record]:
    return [
        Record.for_scenario(scenario(variant=v), "ok", run_id=run_id, created_at=created, time_median_s=1.0)
        for v in variants
    ]


def test_latest_runs_keeps_one_whole_run_per_group_and_never_mixes():
    first = run_records("a", "2026-01-01", ["full", "adapter", "adapterdrop:n=2"])
    partial = run_records("b", "2026-01-02", ["adapterdrop:n=2"])  # a schema-1 style re-measured record
    kept, superseded = latest_runs(first + partial)
    assert {r.run_id for r in kept} == {"a"} and superseded == partial
    whole = run_records("c", "2026-01-03", ["full", "adapter", "adapterdrop:n=2"])
    kept, superseded = latest_runs(first + partial + whole)
    assert kept == whole and len(superseded) == 4
    other_group = run_records("d", "2026-01-01", ["full"])
    for record_ in other_group:
        record_.batch_size, record_.group = 4, "g2"
    kept, _ = latest_runs(first + other_group)
    assert {r.run_id for r in kept} == {"a", "d"}


def test_latest_runs_prefers_a_run_with_the_baseline_when_none_is_complete():
    old = run_records("a", "2026-01-01", ["full", "adapter"])
    lone = run_records("b", "2026-01-02", ["adapterdrop:n=2"])
    kept, _ = latest_runs(old + lone)
    assert {r.run_id for r in kept} == {"a"}


def test_a_torn_line_warns_with_its_own_category(tmp_path):
    """The CLI prints the toolkit's own warnings as one plain line each: the torn line needs its category."""
    path = tmp_path / "results.jsonl"
    path.write_text('{"schema": 2, "mod')
    with pytest.warns(TornLineWarning, match=r"results\.jsonl:1: ignoring an incomplete last line"):
        assert load_records(path) == []


def test_check_writable_leaves_nothing_behind_and_fails_in_plain_words(tmp_path):
    fresh = tmp_path / "new" / "results.jsonl"
    check_writable(fresh)
    assert fresh.parent.is_dir() and not fresh.exists()
    kept = tmp_path / "kept.jsonl"
    append_records(kept, [record()])
    before = kept.read_bytes()
    check_writable(kept)
    assert kept.read_bytes() == before
    (tmp_path / "file").write_text("")
    for path in (tmp_path / "file" / "r.jsonl", tmp_path / "file" / "sub" / "r.jsonl", tmp_path):
        with pytest.raises(ResultsFileError) as caught:
            check_writable(path)
        assert str(caught.value).startswith(f"{path}: cannot write results file (")
        assert "Errno" not in str(caught.value)


def test_a_failed_append_is_a_plain_sentence(tmp_path):
    (tmp_path / "file").write_text("")
    path = tmp_path / "file" / "r.jsonl"
    with pytest.raises(
        ResultsFileError, match=r"^\S+r\.jsonl: cannot write results file \(not a directory\)$"
    ):
        append_records(path, [record()])
