"""Sweeps a scheduler can split: ``--shard I/K`` measures the I-th of K disjoint parts of a grid, whole
groups only, each into its own results file; ``report`` merges the files."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from adapterdrop.cli import main
from adapterdrop.plan import PresetError, expand_groups, load_preset, parse_shard, shard
from adapterdrop.results import load_records


@pytest.mark.parametrize("count", [1, 2, 3, 7, 500])
def test_k_shards_cover_the_grid_exactly_once_and_never_split_a_group(count):
    preset = load_preset("paper")
    grid = expand_groups(preset, devices=["cpu"])
    parts = [
        expand_groups(dataclasses.replace(preset, shard=(index, count)), devices=["cpu"])
        for index in range(count)
    ]
    times = Counter(group for part in parts for group in part)
    assert set(times) == set(grid) and set(times.values()) == {1}  # every group, each exactly once
    owner = {s.key: i for i, part in enumerate(parts) for group in part for s in group.scenarios}
    for group in grid:  # a group's scenarios (baseline and variants) all land in one part
        assert len({owner[s.key] for s in group.scenarios}) == 1
    sizes = [len(part) for part in parts]
    assert max(sizes) - min(sizes) <= 1  # round robin: parts differ by at most one group


@pytest.mark.parametrize("text", ["4/4", "-1/4", "1", "a/b", "1/0", "2/1"])
def test_a_bad_shard_is_one_clear_error(text):
    with pytest.raises(PresetError, match="shard must be I/K"):
        parse_shard(text)


def test_shard_index_out_of_range_is_an_error():
    with pytest.raises(PresetError, match="not in 0..2"):
        shard([], 3, 3)


def test_sweep_shards_write_own_files_and_report_merges_them(capsys, tmp_path, tiny_preset, monkeypatch):
    monkeypatch.chdir(tmp_path)
    groups = expand_groups(load_preset(tiny_preset))
    for index in range(2):
        assert main(["sweep", "--preset", str(tiny_preset), "--shard", f"{index}/2", "--no-progress"]) == 0
    files = sorted((tmp_path / "results").glob("*.jsonl"))
    assert [f.name for f in files] == ["tiny.shard-0-of-2.jsonl", "tiny.shard-1-of-2.jsonl"]
    stored = [{r.group for r in load_records(path)} for path in files]
    assert not stored[0] & stored[1]  # disjoint, and together the whole grid
    assert stored[0] | stored[1] == {g.baseline.group for g in groups}
    assert main(["report", *map(str, files), "--out", str(tmp_path / "merged")]) == 0
    assert (tmp_path / "merged" / "report.md").is_file()
    capsys.readouterr()
    assert main(["sweep", "--preset", str(tiny_preset), "--shard", "2/2"]) != 0
    assert "adapterdrop: error: shard must be I/K" in capsys.readouterr().err


def test_a_device_item_may_list_several_devices():
    """``--device cuda:0,cuda:1`` names the GPUs of a side-by-side sweep (spelling checked here)."""
    from adapterdrop.plan import resolve_devices

    assert resolve_devices(["cuda:0,cuda:1", "cpu"], check=False) == ["cuda:0", "cuda:1", "cpu"]
    assert resolve_devices(["cpu, cpu"]) == ["cpu"]
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_devices(["cpu,tpu"], check=False)
