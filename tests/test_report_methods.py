"""The report's ``methods`` comparison on records made in memory (nothing measured)."""

from __future__ import annotations

import pytest

from adapterdrop.report.comparisons import COMPARISONS
from adapterdrop.report.plots.methods import curves, drop, method, select
from adapterdrop.report.ratios import pair_runs
from adapterdrop.report.records import ReportRecord
from adapterdrop.scenario import Record, Scenario

#: variant -> (median step time s, FLOPs per step, trainable parameters)
TRAIN = {
    "full": (1.00, 900, 1000),
    "adapter": (0.70, 600, 30),
    "adapterdrop:n=6": (0.50, 400, 15),
    "lora": (0.72, 610, 20),
    "lora:n=6": (0.48, 380, 10),
    "ia3": (0.71, 605, 5),
    "adapterdrop:robust": (0.60, 500, 30),
}
INFER = {"full": (0.30, 300, 0), "lora": (0.33, 305, 0), "lora:merged": (0.30, 300, 0)}


def run(variants: dict, phase: str, run_id: str) -> list[ReportRecord]:
    records = []
    base_time, base_flops, _ = variants["full"]
    for variant, (time_s, flops, trainable) in variants.items():
        scenario = Scenario(
            model="bert-small", variant=variant, phase=phase, batch_size=8, seq_len=128, baseline="full"
        )
        samples = [time_s * (1 + 0.001 * i) for i in (-1, 0, 1, 0, -1)]
        record = Record.for_scenario(
            scenario,
            "ok",
            run_id=run_id,
            time_median_s=time_s,
            time_samples_s=samples,
            flops_step=flops,
            speedup=base_time / time_s,
            speedup_ci=[base_time / time_s * 0.99, base_time / time_s * 1.01],
            ideal_speedup=base_flops / flops,
            params_trainable=trainable,
            peak_memory_bytes=4 * 2**20,
            memory_params_bytes=2**20,
            memory_optimizer_bytes=2**20,
            memory_grads_bytes=2**20,
            memory_activations_bytes=2**20,
        )
        records.append(ReportRecord.of(record, "memory"))
    return records


@pytest.fixture
def records() -> list[ReportRecord]:
    made = run(TRAIN, "train", "r1") + run(INFER, "infer", "r2")
    quick_like = run({"full": TRAIN["full"], "adapter": TRAIN["adapter"]}, "train", "r3")
    made += quick_like
    assert not pair_runs(made)
    return made


def test_method_names_and_drops() -> None:
    assert (method("adapterdrop:n=6"), drop("adapterdrop:n=6")) == ("adapter", 6)
    assert (method("lora:n=6"), drop("lora:n=6")) == ("lora", 6)
    assert method("lora:merged") == "lora:merged"
    assert method("adapterdrop:robust") is None
    assert drop("ia3") == 0


def test_selects_runs_with_two_methods_against_full(records) -> None:
    chosen = select(records)
    assert {r.run_id for r in chosen} == {"r1", "r2"}  # r3 holds one method only
    assert "adapterdrop:robust" not in {r.variant for r in chosen}
    assert {r.variant for r in chosen if r.run_id == "r2"} == set(INFER)


def test_the_adapterdrop_curve_is_the_speedup_over_the_same_method_at_n0_with_its_flop_ideal(records) -> None:
    found = curves(select(records))
    assert set(found) == {("adapter", "train"), ("lora", "train")}
    (k0, s0, _, _, i0), (k6, s6, interval, _, ideal) = found[("lora", "train")]
    assert (k0, k6) == (0, 6)
    assert s0 == pytest.approx(1.0) and i0 == pytest.approx(1.0)
    assert s6 == pytest.approx(0.72 / 0.48)
    assert ideal == pytest.approx(610 / 380)
    assert interval is not None and interval[0] <= s6 <= interval[1]
    assert found[("adapter", "train")][1][1] == pytest.approx(0.70 / 0.50)


def test_the_methods_comparison_is_registered_and_draws(records) -> None:
    comparison = next(c for c in COMPARISONS if c.name == "methods")
    selected = comparison.select(records)
    figure = comparison.draw(selected)
    titles = [ax.get_title() for ax in figure.axes if ax.get_visible()]
    assert any(t.startswith("AdapterDrop") for t in titles) and any(t.startswith("speed") for t in titles)
    speed = next(ax for ax in figure.axes if ax.get_title().startswith("speed"))
    assert [t.get_text() for t in speed.get_xticklabels()] == ["adapter", "ia3", "lora", "lora:merged"]
