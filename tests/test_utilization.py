"""Utilisation: published GPU peaks, the measured and cached CPU peak, MFU in records, launch-boundness."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from adapterdrop.measure import utilization
from adapterdrop.measure.runner import measure_group
from adapterdrop.measure.utilization import (
    Peak,
    busy_seconds,
    gpu_spec,
    launch_fields,
    launch_stats,
    matmul_dtype,
    utilization_fields,
)
from adapterdrop.scenario import Scenario


@pytest.fixture
def small_cache(tmp_path, monkeypatch) -> Iterator[None]:
    """Peaks measured on small tensors into a temporary cache, with the in-process caches cleared."""
    monkeypatch.setenv(utilization.CACHE_VARIABLE, str(tmp_path))
    monkeypatch.setattr(utilization, "CPU_PEAK_SIZE", 64)
    monkeypatch.setattr(utilization, "MEASURE_SECONDS", 0.01)
    cached = (utilization.measured_cpu_peak, utilization.measured_matmul_peak, utilization.measured_bandwidth)
    for function in cached:
        function.cache_clear()
    yield
    for function in cached:
        function.cache_clear()


@pytest.mark.parametrize(
    ("name", "label", "bf16_tflops"),
    [
        ("NVIDIA H100 80GB HBM3", "H100 SXM", 989.5),
        ("NVIDIA H100 PCIe", "H100 PCIe", 756),
        ("NVIDIA H200", "H200 SXM", 989.5),
        ("NVIDIA A100-SXM4-80GB", "A100 SXM 80GB", 312),
        ("NVIDIA A100-SXM4-40GB", "A100 40GB", 312),
        ("NVIDIA L40S", "L40S", 362),
        ("NVIDIA L4", "L4", 121),
    ],
)
def test_published_peaks_are_matched_by_device_name(name, label, bf16_tflops):
    spec = gpu_spec(name)
    assert spec is not None and spec.label == label
    assert spec.peaks["bf16"] == bf16_tflops * 1e12
    assert spec.source.startswith("NVIDIA") and "https://" in spec.source


def test_unknown_gpu_and_gpus_without_bf16_have_no_bf16_peak():
    assert gpu_spec("NVIDIA GeForce RTX 4090") is None
    assert gpu_spec("NVIDIA L40") is None and gpu_spec("NVIDIA A10G") is None  # not an L4, not an A10
    assert "bf16" not in gpu_spec("Tesla V100-SXM2-16GB").peaks
    assert gpu_spec("Tesla T4").peaks["tf32"] == gpu_spec("Tesla T4").peaks["fp32"]


def test_fp32_matmuls_run_on_tf32_on_a_gpu_unless_precision_is_highest():
    assert matmul_dtype("fp32", "cuda", "highest") == "fp32"
    assert matmul_dtype("fp32", "cuda", "high") == "tf32"
    assert matmul_dtype("fp32", "cpu", "high") == "fp32"
    assert matmul_dtype("bf16", "cuda", "highest") == "bf16"


def test_utilization_fields_are_recomputable_and_none_without_a_peak():
    fields = utilization_fields(3e9, 0.5, Peak(12e9, "measured: test"))
    assert fields["achieved_flops_s"] == 6e9
    assert fields["mfu"] == pytest.approx(0.5)
    assert fields["peak_flops_source"] == "measured: test"
    missing = utilization_fields(3e9, 0.5, Peak(None, "no published peak"))
    assert missing["achieved_flops_s"] == 6e9 and missing["mfu"] is None
    assert utilization_fields(None, 0.5, Peak(12e9, "x"))["achieved_flops_s"] is None


def test_cpu_peak_is_measured_once_then_read_from_the_cache(small_cache, monkeypatch):
    first = utilization.measured_cpu_peak("fp32", 1)
    assert first["flops_s"] > 0 and first["method"] == "64x64 fp32 matmul (torch.mm)"
    stored = json.loads(utilization.cache_path().read_text())
    assert [entry["flops_s"] for entry in stored.values()] == [first["flops_s"]]
    utilization.measured_cpu_peak.cache_clear()

    def no_measuring(*args, **kwargs):
        raise AssertionError("measured again although the cache holds the peak")

    monkeypatch.setattr(utilization, "_fastest_seconds", no_measuring)
    assert utilization.measured_cpu_peak("fp32", 1) == first
    source = utilization.device_peak("cpu", "fp32", 1).source
    assert source.startswith("measured: 64x64 fp32 matmul") and str(utilization.cache_path()) in source


def _event(name: str, ts: float, dur: float, **extra) -> dict:
    return {"ph": "X", "name": name, "ts": ts, "dur": dur, "tid": 1, **extra}


def _kernel(correlation: int, launch_ts: float, start: float, dur: float) -> list[dict]:
    return [
        _event("cudaLaunchKernel", launch_ts, 1, cat="cuda_runtime", args={"correlation": correlation}),
        _event("gemm", start, dur, cat="kernel", tid=7, args={"correlation": correlation}),
    ]


def test_launch_stats_measure_the_gpu_idle_share_of_each_step():
    """Step 1 (100 µs): kernels busy 30 µs (two overlap: 20 + 10 µs of union) -> idle 70%; step 2 (100 µs):
    one 90 µs kernel -> idle 10%. The median idle share, 40%, is under the 50% threshold."""
    events = [
        _event("ProfilerStep#1", 0, 100, cat="user_annotation"),
        *_kernel(1, 5, 10, 20),
        *_kernel(2, 6, 20, 10),  # inside the first kernel's interval: adds nothing
        *_kernel(3, 50, 60, 10),
        _event("ProfilerStep#2", 200, 100, cat="user_annotation"),
        *_kernel(4, 201, 205, 90),
    ]
    stats = launch_stats(events)
    assert stats["launch"]["gpu_idle_share_by_step"] == pytest.approx([0.7, 0.1])
    assert stats["launch"]["kernels_per_step"] == 2  # median of 3 and 1
    assert stats["launch_bound"] is False
    assert launch_stats(events[:8])["launch_bound"] is True  # step 1 alone: idle 70%


def test_busy_seconds_is_the_length_of_the_union():
    assert busy_seconds([(0, 2), (1, 3), (5, 6)]) == 4
    assert busy_seconds([]) == 0


def test_launch_bound_does_not_apply_on_the_cpu():
    fields = launch_fields(lambda: None, utilization.torch.device("cpu"))
    assert fields["launch_bound"] is None
    assert fields["launch"]["applies"] is False and "CPU" in fields["launch"]["why"]


def test_every_record_carries_achieved_flops_and_mfu(small_cache, fast_timing):
    scenarios = [
        Scenario(model="tiny", variant=v, phase="train", batch_size=2, seq_len=8, baseline="full")
        for v in ("full", "adapterdrop:n=2")
    ]
    records = measure_group(scenarios, fast_timing, baseline="full")
    for record in records:
        assert record.status == "ok"
        assert record.achieved_flops_s == pytest.approx(record.flops_step / record.time_median_s)
        assert record.mfu == pytest.approx(record.achieved_flops_s / record.peak_flops_s)
        assert record.peak_flops_source.startswith("measured: 64x64 fp32 matmul")
        assert record.launch_bound is None and record.launch["applies"] is False


def test_report_plots_mfu_against_batch_size(small_cache, fast_timing, tmp_path):
    from adapterdrop.report import build_report
    from adapterdrop.report.plots.utilization import mfu_quartiles
    from adapterdrop.report.records import ReportRecord
    from adapterdrop.results import append_records

    results = tmp_path / "results.jsonl"
    for batch in (1, 2):
        scenario = Scenario(model="tiny", variant="adapter", phase="infer", batch_size=batch, seq_len=8)
        append_records(results, measure_group([scenario], fast_timing, baseline="adapter"))
    summary = build_report([results], tmp_path / "report")
    assert "utilization" in summary.comparisons_found
    assert (tmp_path / "report" / "mfu.png").exists()
    record = ReportRecord.of(measure_group([scenario], fast_timing)[0], "test")
    low, high = mfu_quartiles(record)
    per_round = sorted(record.flops_step / t / record.peak_flops_s for t in record.time_samples_s)
    assert per_round[0] <= low <= high <= per_round[-1]
