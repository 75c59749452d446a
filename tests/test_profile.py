"""The profiler on the tiny model: the trace, the per-layer FLOPs, AdapterDrop's backward, parallel forks,
fvcore against FlopCounterMode, bytes moved, the roofline, and the step it profiles."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from adapterdrop.cli import main
from adapterdrop.measure import utilization
from adapterdrop.measure.flops import step_flops
from adapterdrop.measure.prepare import group_context, prepare_step
from adapterdrop.plan import expand_groups, preset_from_flags, with_overrides
from adapterdrop.profile.counting import Counts, OpCounter, OpTotals, bytes_moved, count_step
from adapterdrop.profile.fvcore_table import BROADCAST_WHY, compare
from adapterdrop.profile.regions import BACKWARD_SUFFIX, RegionTracer
from adapterdrop.profile.roofline import roofline
from adapterdrop.profile.session import ProfileOptions, folder_name, profile_group
from adapterdrop.profile.step import PhasedStep
from adapterdrop.profile.trace import Schedule
from adapterdrop.scenario import Scenario

LAYERS = 4  # the tiny preset
ONE_STEP = Schedule(wait=0, warmup=1, active=1)


@pytest.fixture(scope="module", autouse=True)
def small_peaks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Peaks and bandwidth measured on small tensors into a temporary cache (fast; values do not matter)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(utilization.CACHE_VARIABLE, str(tmp_path_factory.mktemp("cache")))
        patch.setattr(utilization, "CPU_PEAK_SIZE", 64)
        patch.setattr(utilization, "BANDWIDTH_BYTES", {"cpu": 2**16})
        patch.setattr(utilization, "MEASURE_SECONDS", 0.01)
        for cached in (
            utilization.measured_cpu_peak,
            utilization.measured_matmul_peak,
            utilization.measured_bandwidth,
        ):
            cached.cache_clear()
        yield
        for cached in (
            utilization.measured_cpu_peak,
            utilization.measured_matmul_peak,
            utilization.measured_bandwidth,
        ):
            cached.cache_clear()


def _group(variant: str, vs: str | None, phase: str):
    preset = preset_from_flags(
        [variant], baseline=vs or variant, phases=[phase], batch_sizes=[2], seq_lens=[8]
    )
    return expand_groups(with_overrides(preset, models=["tiny"], threads=1))[0]


def _profile(tmp: Path, variant: str, vs: str | None, phase: str) -> tuple[dict, Path]:
    group = _group(variant, vs, phase)
    out = tmp / folder_name(group)
    options = ProfileOptions(steps=ONE_STEP, timing=None, warmup_steps=1, fvcore=False)
    return profile_group(group, options, out, command="test"), out


@pytest.fixture(scope="module")
def train_profile(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """``adapterdrop:n=2`` against ``adapter``, training, one profiled step each."""
    return _profile(tmp_path_factory.mktemp("train"), "adapterdrop:n=2", "adapter", "train")


def _layers(result: dict, variant: str) -> dict[str, dict]:
    return {row["name"]: row for row in result["variants"][variant]["layers"]}


def _properly_nested(spans: list[tuple[float, float]]) -> bool:
    """True when no two spans overlap without one containing the other."""
    spans = sorted(spans, key=lambda s: (s[0], -s[1]))
    open_ends: list[float] = []
    for start, end in spans:
        while open_ends and open_ends[-1] <= start:
            open_ends.pop()
        if open_ends and end > open_ends[-1]:
            return False
        open_ends.append(end)
    return True


def test_trace_is_json_with_nested_named_ranges(train_profile):
    result, out = train_profile
    for variant, profile in result["variants"].items():
        events = json.loads((out / profile["trace"]).read_text())["traceEvents"]
        ranges = [e for e in events if e.get("cat") == "user_annotation" and e.get("ph") == "X"]
        names = {e["name"] for e in ranges}
        expected = {
            "forward",
            "backward",
            "optimizer",
            "embeddings",
            "head",
            "loss",
            "head" + BACKWARD_SUFFIX,
        }
        for layer in range(2 if variant == "adapterdrop:n=2" else 0, LAYERS):
            expected |= {
                f"layer.{layer}/ffn_norm/adapter",
                f"layer.{layer}/ffn_norm/adapter" + BACKWARD_SUFFIX,
            }
        for layer in range(LAYERS):
            expected |= {
                f"layer.{layer}/{part}" for part in ("attention", "attention_norm", "ffn", "ffn_norm")
            }
        assert expected <= names, sorted(expected - names)
        for thread in {e["tid"] for e in ranges}:
            spans = [(e["ts"], e["ts"] + e["dur"]) for e in ranges if e["tid"] == thread]
            assert _properly_nested(spans), f"{variant}: ranges overlap without nesting"


def test_per_layer_flops_add_up_to_the_step_total(train_profile):
    result, _ = train_profile
    for profile in result["variants"].values():
        scenario = Scenario(**profile["scenario"])
        prepared = prepare_step(scenario, group_context(scenario))
        total = step_flops(prepared)["flops_step"]
        rows = profile["layers"]
        named = [row for row in rows if row["name"] != "other"]
        assert [row["name"] for row in named] == [
            "embeddings",
            *(f"layer.{i}" for i in range(LAYERS)),
            "head",
            "loss",
        ]
        assert sum(row[p]["flops"] for row in named for p in ("forward", "backward")) == total
        assert rows[-1]["forward"]["flops"] == rows[-1]["backward"]["flops"] == 0


def test_layers_below_k_have_no_backward_for_adapterdrop_and_all_have_for_adapter(train_profile):
    result, _ = train_profile
    dropped, plain = _layers(result, "adapterdrop:n=2"), _layers(result, "adapter")
    for layer in range(LAYERS):
        name = f"layer.{layer}"
        assert plain[name]["backward"]["flops"] > 0
        assert all(t > 0 for t in plain[name]["backward"]["time_s"])
        if layer < 2:
            assert dropped[name]["backward"]["flops"] == 0
            assert dropped[name]["backward"]["time_s"] == [0.0]
        else:
            assert dropped[name]["backward"]["flops"] > 0


def test_backward_flops_land_in_the_region_that_ran_them():
    """Frozen feed-forward above the first trainable layer: input gradients only (backward = forward); an
    adapter there: weight and input gradients of both projections (backward = 2 x forward)."""
    scenario = Scenario(model="tiny", variant="adapter", phase="train", batch_size=2, seq_len=8)
    prepared = prepare_step(scenario, group_context(scenario))
    counts = count_step(PhasedStep(prepared, RegionTracer()))

    def flops(phase: str, path: str) -> float:
        return sum(t.flops for (p, where, _), t in counts.items() if p == phase and where == path)

    for layer in range(1, LAYERS):
        ffn, adapter = f"layer.{layer}/ffn", f"layer.{layer}/ffn_norm/adapter"
        assert flops("backward", ffn) == flops("forward", ffn) > 0
        assert flops("backward", adapter) == 2 * flops("forward", adapter) > 0


def test_parallel_profile_shows_which_layers_run_once(tmp_path):
    result, out = _profile(tmp_path, "parallel:tasks=3,n=2", "parallel:tasks=3", "infer")
    forked, whole = _layers(result, "parallel:tasks=3,n=2"), _layers(result, "parallel:tasks=3")
    assert [forked[f"layer.{i}"]["copies_in"] for i in range(LAYERS)] == [1, 1, 1, 3]
    assert [forked[f"layer.{i}"]["copies_out"] for i in range(LAYERS)] == [1, 1, 3, 3]
    assert [whole[f"layer.{i}"]["copies_out"] for i in range(LAYERS)] == [3, 3, 3, 3]
    assert (forked["head"]["copies_in"], forked["head"]["copies_out"]) == (3, None)  # logits are not rows
    assert forked["layer.3"]["forward"]["flops"] == pytest.approx(
        3 * forked["layer.1"]["forward"]["flops"], rel=0.02
    )
    events = json.loads((out / result["variants"]["parallel:tasks=3,n=2"]["trace"]).read_text())[
        "traceEvents"
    ]
    assert {"shared_layers", "shared_layers/layer.1/ffn"} <= {e.get("name") for e in events}
    markdown = (out / "breakdown.md").read_text()
    assert "## Side by side: parallel:tasks=3,n=2 against parallel:tasks=3" in markdown


@pytest.mark.parametrize(
    "variant", ["adapter", "adapterdrop:n=2", "parallel:tasks=3,n=2", "fusion:adapters=3"]
)
def test_fvcore_and_flop_counter_agree_after_converting_the_convention(variant):
    scenario = Scenario(model="tiny", variant=variant, phase="infer", batch_size=2, seq_len=8)
    prepared = prepare_step(scenario, group_context(scenario))
    table = compare(prepared.model, prepared.batch.input_ids)
    assert (
        table["fvcore_broadcast_aware_flops"] == table["torch_flops"] == step_flops(prepared)["flops_forward"]
    )
    assert all(row["why"] in ("", BROADCAST_WHY) for row in table["rows"])
    if variant.startswith(("adapter", "adapterdrop")):  # no broadcast products: agree as shipped
        assert table["fvcore_flops"] == table["torch_flops"]
        assert all(row["difference"] == 0 for row in table["rows"])


def test_bytes_moved_counts_operands_and_results_not_views():
    a, b = torch.ones(4, 8), torch.ones(8, 2)
    aten = torch.ops.aten
    assert bytes_moved(aten.mm.default, (a, b), {}, a @ b) == (32 + 16 + 8) * 4
    assert bytes_moved(aten.t.default, (a,), {}, a.t()) == 0
    row = torch.ones(1, 8).expand(4, 8)  # a broadcast operand spans its 8 distinct elements
    assert bytes_moved(aten.add.Tensor, (a, row), {}, a + row) == (32 + 8 + 32) * 4


def test_fused_adamw_moves_params_grads_and_state_once():
    """AdamW reads parameter, gradient and both moments and writes parameter and moments: 7 x the bytes of
    the parameters, plus reading the step counters (incremented by an operator of their own); the gradients
    are read, not written."""
    model = torch.nn.Linear(16, 16)
    optimizer = torch.optim.AdamW(model.parameters(), fused=True)
    model(torch.ones(2, 16)).sum().backward()
    optimizer.step()  # creates the state
    model(torch.ones(2, 16)).sum().backward()
    tracer = RegionTracer()
    tracer.phase = "optimizer"
    with FlopCounterMode(display=False) as flops, OpCounter(flops, tracer.where) as ops:
        optimizer.step()
    moved = sum(t.bytes for (_, _, op), t in ops.counts.items() if op == "aten._fused_adamw_")
    params = sum(p.numel() * 4 for p in model.parameters())
    steps = sum(s["step"].numel() * 4 for s in optimizer.state.values())
    assert moved == 7 * params + steps


def test_roofline_sums_the_bound_of_every_call():
    counts: Counts = {}
    compute, memory = OpTotals(), OpTotals()
    compute.record(flops=1000.0, moved=10.0)  # 1000 / 100 = 10 s of compute, 10 / 10 = 1 s of memory
    compute.record(flops=1000.0, moved=10.0)
    memory.record(flops=100.0, moved=100.0)  # 1 s of compute, 10 s of memory
    counts[("forward", "layer.0", "aten.mm")] = compute
    counts[("optimizer", "", "aten._fused_adamw_")] = memory
    result = roofline(counts, peak_flops_s=100.0, bandwidth_bytes_s=10.0)
    assert result["roofline_s"] == pytest.approx(30.0)
    assert result["phases"]["forward"]["roofline_s"] == pytest.approx(20.0)
    bounds = {op["operator"]: op["bound"] for op in result["operators"]}
    assert bounds == {"aten.mm": "compute", "aten._fused_adamw_": "memory"}


def test_phased_step_updates_the_parameters_as_the_prepared_step_does():
    scenario = Scenario(model="tiny", variant="adapterdrop:n=1", phase="train", batch_size=2, seq_len=8)
    torch.manual_seed(0)
    harness = prepare_step(scenario, group_context(scenario))
    torch.manual_seed(0)
    profiled = prepare_step(scenario, group_context(scenario))
    phased = PhasedStep(profiled, RegionTracer(ranges=True))
    for _ in range(2):
        torch.manual_seed(1)
        harness.step()
        torch.manual_seed(1)
        phased()
    for (name, ours), theirs in zip(
        profiled.model.named_parameters(), harness.model.parameters(), strict=True
    ):
        assert torch.equal(ours, theirs), name


def test_profile_command_writes_the_folder_and_utilisation(tmp_path, capsys):
    status = main(
        ["profile", "adapterdrop:n=3", "--vs", "adapter", "--model", "tiny", "--phase", "train",
         "--batch-size", "2", "--seq-len", "8", "--threads", "1", "--steps", "1", "--wait", "0",
         "--trace", "ranges", "--rounds", "2", "--no-fvcore", "--out", str(tmp_path)]
    )  # fmt: skip
    assert status == 0
    folder = tmp_path / "adapterdrop_n=3-vs-adapter-train-tiny-b2-s8-cpu-fp32-t1"
    assert capsys.readouterr().out.strip() == str(folder / "breakdown.md")
    result = json.loads((folder / "breakdown.json").read_text())
    assert result["command"].startswith("adapterdrop profile adapterdrop:n=3 --vs adapter --model tiny")
    for record in result["records"]:
        assert record["mfu"] == pytest.approx(record["achieved_flops_s"] / record["peak_flops_s"])
        assert record["achieved_flops_s"] == pytest.approx(record["flops_step"] / record["time_median_s"])
    trace = json.loads((folder / "trace-adapter.json").read_text())["traceEvents"]
    assert {e.get("cat") for e in trace if e.get("ph") == "X"} == {"user_annotation"}
    markdown = (folder / "breakdown.md").read_text()
    for heading in (
        "## Measured by the harness",
        "## Side by side",
        "### Per layer",
        "### Roofline",
        "### Memory",
    ):
        assert heading in markdown


def test_gpu_range_times_count_kernels_launched_by_autograds_thread():
    """On a GPU, backward's kernels are launched by autograd's device thread while the main thread waits
    in the ``backward`` range: that range's device time holds them (it read zero when only the range's own
    thread counted)."""
    from adapterdrop.profile.trace import Trace

    def span(name, tid, ts, dur, cat="user_annotation"):
        return {"ph": "X", "cat": cat, "name": name, "tid": tid, "ts": ts, "dur": dur}

    def kernel(correlation, tid, launch_ts, ts, dur):
        args = {"correlation": correlation}
        return [
            {**span("cudaLaunchKernel", tid, launch_ts, 1, "cuda_runtime"), "args": args},
            {**span("gemm", "stream 7", ts, dur, "kernel"), "args": args},
        ]

    events = [span("ProfilerStep#1", "main", 0, 1000), span("forward", "main", 10, 100)]
    events += [span("backward", "main", 200, 500), span("layer.1 (backward)", "autograd", 250, 100)]
    events += kernel(1, "main", 20, 30, 40)  # forward, launched by the main thread
    events += kernel(2, "autograd", 260, 270, 50) + kernel(3, "autograd", 400, 410, 30)  # backward
    (times,) = Trace({"traceEvents": events}).range_times()
    assert times["forward"] == pytest.approx(40e-6)
    assert times["backward"] == pytest.approx(80e-6)  # both of autograd's kernels
    assert times["layer.1 (backward)"] == pytest.approx(50e-6)  # the one launched inside it
