"""Sweeps: preset loading and expansion, an end-to-end sweep, resume, OOM handling, devices."""

from __future__ import annotations

import json

import pytest
import torch

from adapterdrop.errors import AdapterDropError, VariantError
from adapterdrop.measure import runner
from adapterdrop.plan import PresetError, expand_groups, load_preset, resolve_devices
from adapterdrop.results import latest_runs, load_records
from adapterdrop.scenario import ScenarioError
from adapterdrop.sweep import run_sweep


def test_shipped_presets_load_and_expand():
    quick = load_preset("quick")
    assert quick.models == ("bert-small",) and quick.devices == ("cpu",)
    groups = expand_groups(quick)
    assert groups and all(g.scenarios[0].variant == g.scenarios[0].baseline for g in groups)
    parallel = [g for g in groups if g.baseline.comparison == "parallel"]
    assert {g.baseline.variant for g in parallel} == {"parallel:tasks=2", "parallel:tasks=8"}
    assert [s.variant for s in parallel[0].scenarios] == [
        "parallel:tasks=2",
        "parallel:tasks=2,n=5",
        "parallel:tasks=2,n=11",
    ]
    paper = load_preset("paper")
    assert paper.models == ("bert-base",)
    paper_groups = expand_groups(paper, devices=["cpu"])
    tasks = {s.variant for g in paper_groups for s in g.scenarios if s.comparison == "parallel"}
    assert "parallel:tasks=16,n=11" in tasks and "parallel:tasks=2,n=1" in tasks
    assert {s.phase for g in paper_groups for s in g.scenarios} == {"train", "infer"}


def test_groups_split_on_baseline_placeholders(tiny_preset):
    groups = expand_groups(load_preset(tiny_preset))
    parallel = [g for g in groups if g.baseline.comparison == "parallel"]
    assert len(parallel) == 4  # tasks 2, 3 x batch sizes 1, 2
    assert [g.baseline.batch_size for g in parallel] == [1, 2, 1, 2]  # ascending within a series
    # n=0 is the baseline itself (canonical name), so it is measured once, not twice
    assert [s.variant for s in parallel[0].scenarios] == ["parallel:tasks=2", "parallel:tasks=2,n=2"]
    assert all(s.threads == 1 and s.precision == "native" for g in groups for s in g.scenarios)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[[comparison]]\nname='a'\nbaseline='full'\nvariants=['nope']",
            "unknown variant 'nope'",
        ),
        (
            "models=['bert-huge']\n[[comparison]]\nname='a'\nbaseline='full'\nvariants=[]",
            "bert-huge",
        ),
        (
            "[[comparison]]\nname='a'\nbaseline='full'\nvariants=[]\nbatch_sizes=[0]",
            "positive integers",
        ),
        (
            "[[comparison]]\nname='a'\nbaseline='full'\nvariants=['parallel:tasks={t}']",
            "placeholder",
        ),
        (
            "[[comparison]]\nname='a'\nbaseline='parallel:tasks={t}'\nvariants=[]",
            "placeholder\\(s\\) t not in expand",
        ),
        ("colour='red'\n[[comparison]]\nname='a'\nbaseline='full'\nvariants=[]", "unknown key"),
        (
            "devices=['tpu']\n[[comparison]]\nname='a'\nbaseline='full'\nvariants=[]",
            "unknown device",
        ),
        ("[[comparison]]\nname='a'\nbaseline='full'", "needs 'variants'"),
        ("models = [", "not valid TOML"),
    ],
)
def test_bad_presets(tmp_path, text, message):  # one PresetError naming the file
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(PresetError, match=f"preset {path}: .*{message}"):
        load_preset(path)


def test_unknown_preset_names_the_available_ones():
    with pytest.raises(PresetError, match="unknown sweep preset 'nope'; available: .*quick"):
        load_preset("nope")


def test_devices():
    assert resolve_devices(["cpu", "cpu"]) == ["cpu"]
    with pytest.raises(ScenarioError, match="unknown device 'tpu'"):
        resolve_devices(["tpu"])
    if not torch.cuda.is_available():
        with pytest.raises(ScenarioError, match="CUDA is not available"):
            resolve_devices(["cuda:1"])
        with pytest.raises(ScenarioError, match="no GPU is visible"):
            resolve_devices(["all"])
    assert issubclass(ScenarioError, AdapterDropError)


def test_sweep_end_to_end_then_resume(tiny_preset, tmp_path):
    results = tmp_path / "results.jsonl"
    preset = load_preset(tiny_preset)
    written = run_sweep(preset, results)
    stored = load_records(results)
    assert [r.to_dict() for r in stored] == [r.to_dict() for r in written]
    assert len(stored) == 12  # training: 4 variants; parallel: 4 groups of 2
    statuses = {r.variant: r.status for r in stored if r.comparison == "training"}
    assert statuses == {"full": "ok", "adapter": "ok", "adapterdrop:n=2": "ok", "parallel:tasks=2": "skipped"}
    for record in stored:
        if record.status == "ok":
            assert record.time_median_s > 0 and record.flops_step > 0 and record.speedup > 0
            assert record.env["git_commit"] and record.env["threads"] == 1
        if record.variant == record.baseline:
            assert record.speedup == 1.0
    shared = [r for r in stored if r.variant == "parallel:tasks=3,n=2"]
    assert all(r.ideal_speedup > 1 for r in shared)  # two shared layers save FLOPs
    before = results.read_bytes()
    assert run_sweep(preset, results) == []
    assert results.read_bytes() == before


def test_a_file_written_before_the_newer_scenario_fields_still_resumes(tiny_preset, tmp_path, monkeypatch):
    """A results file of schema 1, whose lines lack every scenario field added since (execution mode,
    data-parallel fields) and the run ids, and whose keys hash only the fields schema 1 had, resumes: a
    rerun measures nothing and writes nothing."""
    import hashlib

    from adapterdrop.scenario import KEY_FIELDS_V1, SCENARIO_FIELDS

    results = tmp_path / "results.jsonl"
    preset = load_preset(tiny_preset)
    run_sweep(preset, results)
    newer = [name for name in SCENARIO_FIELDS if name not in KEY_FIELDS_V1]
    assert "exec" in newer and "world_size" in newer  # what the key change was for
    old = []
    for line in results.read_text().splitlines():
        data = {k: v for k, v in json.loads(line).items() if k not in newer and k != "run_id"}
        legacy = json.dumps({k: data[k] for k in KEY_FIELDS_V1}, sort_keys=True, separators=(",", ":"))
        old.append(json.dumps({**data, "schema": 1, "key": hashlib.sha1(legacy.encode()).hexdigest()}))
    results.write_text("\n".join(old) + "\n")
    monkeypatch.setattr(runner, "prepare_step", lambda *a: pytest.fail("a stored scenario was measured"))
    before = results.read_bytes()
    assert run_sweep(preset, results) == []
    assert results.read_bytes() == before


def test_a_partly_stored_group_is_measured_again_whole_as_one_new_run(tiny_preset, tmp_path):
    results = tmp_path / "results.jsonl"
    preset = load_preset(tiny_preset)
    run_sweep(preset, results)
    lines = results.read_text().splitlines()
    kept = [line for line in lines if json.loads(line)["variant"] != "adapterdrop:n=2"]
    assert len(kept) == len(lines) - 1
    results.write_text("\n".join(kept) + "\n")
    written = run_sweep(preset, results)
    # the whole training group (its baseline too) is measured and stored as one run
    assert [r.variant for r in written] == ["full", "adapter", "adapterdrop:n=2", "parallel:tasks=2"]
    assert len({r.run_id for r in written}) == 1
    new = {r.variant: r for r in written}
    assert new["adapterdrop:n=2"].speedup == pytest.approx(
        new["full"].time_median_s / new["adapterdrop:n=2"].time_median_s
    )
    stored = load_records(results)
    assert len(stored) == len(lines) - 1 + len(written)
    kept_records, superseded = latest_runs(stored)
    assert {r.run_id for r in kept_records if r.comparison == "training"} == {written[0].run_id}
    assert {r.variant for r in superseded} == {"full", "adapter", "parallel:tasks=2"}


def test_oom_is_recorded_and_larger_batches_are_skipped(tmp_path, monkeypatch):
    preset_path = tmp_path / "oom.toml"
    preset_path.write_text(
        'models = ["tiny"]\nthreads = 1\n[timing]\nrounds = 1\nmin_sample_time_s = 0.005\nwarmup_steps = 0\n'
        '[[comparison]]\nname = "inference"\nphases = ["infer"]\nbaseline = "full"\n'
        'variants = ["adapter"]\nbatch_sizes = [1, 2, 4]\nseq_lens = [8]\n'
    )
    prepare = runner.prepare_step

    def fake_prepare(scenario, *args):
        if scenario.variant == "adapter" and scenario.batch_size >= 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return prepare(scenario, *args)

    monkeypatch.setattr(runner, "prepare_step", fake_prepare)
    results = tmp_path / "results.jsonl"
    written = run_sweep(load_preset(preset_path), results)
    outcome = {(r.variant, r.batch_size): (r.status, r.error) for r in written}
    assert outcome[("adapter", 1)][0] == "ok"
    assert outcome[("adapter", 2)] == (
        "oom",
        "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
    )
    assert outcome[("adapter", 4)] == ("skipped", "batch size 2 ran out of memory")
    assert all(r.env["device"] == "cpu" for r in written)  # skipped records carry their environment too
    assert all(outcome[("full", b)][0] == "ok" for b in (1, 2, 4))  # the sweep went on
    assert run_sweep(load_preset(preset_path), results) == []  # oom and skipped count as done


def test_a_variant_that_does_not_fit_the_model_stops_the_sweep_before_measuring(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text(
        'models = ["tiny"]\n[[comparison]]\nname = "a"\nbaseline = "full"\nvariants = ["adapterdrop:n=9"]\n'
    )
    with pytest.raises(VariantError, match="adapterdrop:n=9 on tiny: n=9 is out of range"):
        run_sweep(load_preset(path), tmp_path / "r.jsonl")
    assert not (tmp_path / "r.jsonl").exists()
