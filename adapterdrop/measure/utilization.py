"""Utilisation of a step: achieved FLOP/s, MFU against the device's peak, memory bandwidth, launch-boundness.

FLOPs count 2 per multiply-add (not MACs). **Peaks** are dense (no structured sparsity):

- a GPU's peak is the published datasheet figure for its model and the dtype its matrix products run in
  (:data:`GPU_SPECS`, each with its source; the datasheets print tensor-core figures *with* 2:4 sparsity,
  so the dense peak is half of them). fp32 runs on TF32 tensor cores unless
  ``torch.get_float32_matmul_precision()`` is ``highest``; ``autocast`` runs matrix products in its dtype;
  published peaks assume boost clocks, so an MFU near 1 is out of reach in practice;
- a CPU's peak is *measured* once, by a large square matrix product (:data:`CPU_PEAK_SIZE`) with the
  record's thread count and dtype (the fastest call of those timed for :data:`MEASURE_SECONDS`: other
  processes can only slow a call), and cached (:func:`cache_path`) per CPU model, threads, dtype and torch
  version; the cache keeps when it was measured and the load average then. A peak measured on a busy
  machine may still be too low (and every MFU then too high): remeasure on an idle machine with
  ``adapterdrop profile --measure-peaks``.

``mfu`` = ``flops_step / time_median_s`` / peak. **Bandwidth** (bytes/s, read + written) is measured the
same way, as the fastest of three STREAM-style kernels (``a = b + 2c``, ``a += 2b``, ``a += b·c``; each
array read once and each result written once counted, as the roofline counts operators) over arrays far
larger than any cache (:func:`measured_bandwidth`), for the roofline of :mod:`adapterdrop.profile`. A kernel
with more streams in flight (fused AdamW) can still move bytes faster than this.

**Launch-boundness** (GPU only): a few steps run under ``torch.profiler`` with CUDA activity; per step, the
share of its wall time in which no kernel of it runs (the GPU idles between kernels, waiting for the CPU to
launch the next one), and its kernel count. ``launch_bound`` is true when the GPU idles for at least
:data:`LAUNCH_BOUND_IDLE_SHARE` of the step. On the CPU operators run synchronously and nothing is
launched: the flag does not apply (None, and ``launch`` says so).
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch.utils.benchmark import Timer

from adapterdrop.measure.env import cpu_model

#: a step counts as launch-bound when the GPU idles for at least this share of it
LAUNCH_BOUND_IDLE_SHARE = 0.5
#: side of the square matrices whose product measures a CPU's peak
CPU_PEAK_SIZE = 2048
#: bytes of each array of the kernels that measure bandwidth: 128 MiB on a CPU, 1 GiB on a GPU (far beyond
#: any cache)
BANDWIDTH_BYTES = {"cpu": 2**27, "cuda": 2**30}
#: seconds of timed calls per measurement (torch.utils.benchmark blocked_autorange)
MEASURE_SECONDS = 2.0
#: overrides the folder of the peak cache
CACHE_VARIABLE = "ADAPTERDROP_CACHE_DIR"

_DATASHEETS = {
    "H100": "NVIDIA H100 Tensor Core GPU datasheet, https://www.nvidia.com/en-us/data-center/h100/",
    "H200": "NVIDIA H200 Tensor Core GPU datasheet, https://www.nvidia.com/en-us/data-center/h200/",
    "A100": "NVIDIA A100 Tensor Core GPU datasheet, https://www.nvidia.com/en-us/data-center/a100/",
    "L40S": "NVIDIA L40S datasheet, https://www.nvidia.com/en-us/data-center/l40s/",
    "L4": "NVIDIA L4 Tensor Core GPU datasheet, https://www.nvidia.com/en-us/data-center/l4/",
    "A10": "NVIDIA A10 Tensor Core GPU datasheet, https://www.nvidia.com/en-us/data-center/products/a10-gpu/",
    "V100": "NVIDIA V100 Tensor Core GPU datasheet, https://www.nvidia.com/en-us/data-center/v100/",
    "T4": "NVIDIA T4 Tensor Core GPU datasheet, https://www.nvidia.com/en-us/data-center/tesla-t4/",
}
_T = 1e12


@dataclass(frozen=True)
class GpuSpec:
    """Published dense peaks of one GPU model (FLOP/s per matmul dtype) and its memory bandwidth (B/s)."""

    label: str
    #: matched against ``torch.cuda.get_device_name()`` (case-insensitive): the first word is the model,
    #: a word of the name; each other word begins one
    match: tuple[str, ...]
    peaks: dict[str, float]
    bandwidth: float
    source: str


def _spec(
    label: str,
    match: tuple[str, ...],
    fp32: float,
    tf32: float | None,
    fp16: float,
    bw: float,
    bf16: bool = True,
) -> GpuSpec:
    """A spec from datasheet figures in TFLOP/s and TB/s; ``tf32`` None: no TF32 tensor cores (fp32 matmuls
    run at the fp32 peak); ``bf16`` False: no bf16 tensor cores."""
    peaks = {"fp32": fp32 * _T, "tf32": (tf32 or fp32) * _T, "fp16": fp16 * _T}
    if bf16:
        peaks["bf16"] = fp16 * _T
    return GpuSpec(label, match, peaks, bw * _T, _DATASHEETS[label.split()[0]])


#: published dense peaks, most specific first (the first spec whose model, its first word, is a word of the
#: device name and each of whose other words begins one wins, so an L40 is not taken for an L4 nor an A10G
#: for an A10); tensor-core figures are half the datasheet's "with sparsity" ones; bandwidth is the memory's
#: published figure
GPU_SPECS: tuple[GpuSpec, ...] = (
    _spec("H100 PCIe", ("h100", "pcie"), 51, 378, 756, 2.0),
    _spec("H100 NVL", ("h100", "nvl"), 60, 417.5, 835.5, 3.9),
    _spec("H100 SXM", ("h100",), 67, 494.5, 989.5, 3.35),
    _spec("H200 NVL", ("h200", "nvl"), 60, 417.5, 835.5, 4.8),
    _spec("H200 SXM", ("h200",), 67, 494.5, 989.5, 4.8),
    _spec("A100 SXM 80GB", ("a100", "sxm", "80gb"), 19.5, 156, 312, 2.039),
    _spec("A100 PCIe 80GB", ("a100", "80gb"), 19.5, 156, 312, 1.935),
    _spec("A100 40GB", ("a100",), 19.5, 156, 312, 1.555),
    _spec("L40S", ("l40s",), 91.6, 183, 362, 0.864),
    _spec("L4", ("l4",), 30.3, 60, 121, 0.3),
    _spec("A10", ("a10",), 31.2, 62.5, 125, 0.6),
    _spec("V100 SXM2", ("v100", "sxm2"), 15.7, None, 125, 0.9, bf16=False),
    _spec("V100 PCIe", ("v100",), 14, None, 112, 0.9, bf16=False),
    _spec("T4", ("t4",), 8.1, None, 65, 0.32, bf16=False),
)


def gpu_spec(device_name: str) -> GpuSpec | None:
    """The published spec of the GPU called ``device_name`` (None for a model not in :data:`GPU_SPECS`)."""
    words = device_name.lower().replace("-", " ").split()
    for spec in GPU_SPECS:
        model, *details = spec.match
        if model in words and all(any(word.startswith(part) for word in words) for part in details):
            return spec
    return None


@dataclass(frozen=True)
class Peak:
    """A device's peak: ``flops_s`` (FLOP/s, dense) for the dtype a step's matmuls run in, and where the
    figure comes from (``source``: ``published: ...`` or ``measured: ...``)."""

    flops_s: float | None
    source: str


def matmul_dtype(dtype: str, device_type: str, float32_precision: str | None = None) -> str:
    """The dtype a step's matrix products run in: fp32 becomes tf32 on a GPU unless the float32 matmul
    precision is ``highest``; a CPU runs fp32 as fp32."""
    if dtype != "fp32" or device_type != "cuda":
        return dtype
    precision = float32_precision or torch.get_float32_matmul_precision()
    return "fp32" if precision == "highest" else "tf32"


def device_peak(device: str, dtype: str, threads: int) -> Peak:
    """The peak a record's MFU is measured against (see the module docstring)."""
    kind = torch.device(device).type
    if kind == "cuda":
        name = torch.cuda.get_device_name(torch.device(device))
        spec = gpu_spec(name)
        mm = matmul_dtype(dtype, kind)
        if spec is None or mm not in spec.peaks:
            return Peak(None, f"no published {mm} peak for GPU '{name}' in adapterdrop.measure.utilization")
        return Peak(spec.peaks[mm], f"published: {spec.label} dense {mm} peak, {spec.source}")
    entry = measured_cpu_peak(dtype, threads)
    return Peak(entry["flops_s"], measured_source(entry))


def measured_source(entry: dict[str, Any]) -> str:
    """How a cached measurement (:func:`measured_cpu_peak`, :func:`measured_bandwidth`) was made."""
    return (
        f"measured: {entry['method']} on {entry['device']}, {entry['threads']} thread(s), "
        f"fastest of {entry['calls']} calls, {entry['measured_at']}, load average {entry['loadavg']:.2f} "
        f"(cached in {cache_path()})"
    )


def utilization_fields(flops_step: float | None, time_median_s: float | None, peak: Peak) -> dict[str, Any]:
    """Record fields: ``achieved_flops_s`` = FLOPs per step / median seconds per step, ``mfu`` = that / the
    peak, ``peak_flops_s`` and ``peak_flops_source``; None where a figure is missing."""
    achieved = flops_step / time_median_s if flops_step and time_median_s else None
    return {
        "achieved_flops_s": achieved,
        "mfu": achieved / peak.flops_s if achieved is not None and peak.flops_s else None,
        "peak_flops_s": peak.flops_s,
        "peak_flops_source": peak.source,
    }


# ------------------------------------------------------------------------------------------ measured peaks


def cache_path() -> Path:
    """The JSON file of measured peaks: ``$ADAPTERDROP_CACHE_DIR``, else ``$XDG_CACHE_HOME/adapterdrop``,
    else ``~/.cache/adapterdrop``, then ``device-peaks.json``."""
    folder = os.environ.get(CACHE_VARIABLE)
    if not folder:
        folder = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "adapterdrop")
    return Path(folder) / "device-peaks.json"


def _read_cache() -> dict[str, Any]:
    try:
        data = json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(key: str, entry: dict[str, Any]) -> None:
    path = cache_path()
    data = _read_cache()
    data[key] = entry
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
        os.replace(handle.name, path)
    except OSError:
        pass  # an unwritable cache only means measuring again next time


def _device_label(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()


def _cache_key(what: str, device: torch.device, threads: int, dtype: str) -> str:
    return f"{what}|{_device_label(device)}|threads={threads}|{dtype}|torch={torch.__version__}"


def _fastest_seconds(fn: Callable[[], object], threads: int) -> tuple[float, int]:
    """Seconds of the fastest timed block of calls (per call), and the calls timed: a peak is the best the
    device does, and another process on the machine can only slow a call down."""
    measurement = Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads).blocked_autorange(
        min_run_time=MEASURE_SECONDS
    )
    return min(measurement.times), len(measurement.times) * measurement.number_per_run


def _measure(what: str, device: torch.device, threads: int, dtype: str, remeasure: bool) -> dict[str, Any]:
    key = _cache_key(what, device, threads, dtype)
    if not remeasure:
        cached = _read_cache().get(key)
        if isinstance(cached, dict) and cached.get("flops_s" if what == "matmul" else "bytes_s"):
            return cached
    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    if what == "matmul":
        n = CPU_PEAK_SIZE if device.type == "cpu" else 8192
        a, b = (torch.randn(n, n, device=device, dtype=torch_dtype) for _ in range(2))
        out = torch.empty(n, n, device=device, dtype=torch_dtype)
        seconds, calls = _fastest_seconds(lambda: torch.mm(a, b, out=out), threads)
        entry: dict[str, Any] = {
            "flops_s": 2 * n**3 / seconds,
            "method": f"{n}x{n} {dtype} matmul (torch.mm)",
        }
    else:
        count = BANDWIDTH_BYTES[device.type] // torch.empty((), dtype=torch_dtype).element_size()
        a, b, c = (torch.randn(count, device=device).to(torch_dtype) for _ in range(3))
        size = count * a.element_size()
        rates, calls = {}, 0
        for name, (kernel, arrays) in {
            "a = b + 2c": (lambda: torch.add(b, c, alpha=2.0, out=a), 3),
            "a += 2b": (lambda: a.add_(b, alpha=2.0), 3),
            "a += b * c": (lambda: a.addcmul_(b, c, value=0.5), 4),
        }.items():
            seconds, timed = _fastest_seconds(kernel, threads)
            rates[name], calls = arrays * size / seconds, calls + timed
        best = max(rates, key=rates.__getitem__)
        listed = ", ".join(f"{name} {rate / 1e9:.1f} GB/s" for name, rate in rates.items())
        method = f"fastest streaming kernel over {size / 2**20:.0f} MiB arrays: {best} ({listed})"
        entry = {"bytes_s": rates[best], "method": method}
    entry.update(
        device=_device_label(device),
        threads=threads,
        calls=calls,
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
        loadavg=os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"),
        torch=torch.__version__,
    )
    _write_cache(key, entry)
    return entry


@functools.cache
def measured_cpu_peak(dtype: str, threads: int, remeasure: bool = False) -> dict[str, Any]:
    """The CPU's matmul peak in ``dtype`` with ``threads`` threads (cache entry: ``flops_s``, ``method``,
    ``calls``, ``measured_at``, ``loadavg``); measured once and cached (see the module docstring)."""
    return _measure("matmul", torch.device("cpu"), threads, dtype, remeasure)


@functools.cache
def measured_matmul_peak(device: str, dtype: str, threads: int, remeasure: bool = False) -> dict[str, Any]:
    """A device's measured matmul FLOP/s in ``dtype`` (cached like :func:`measured_cpu_peak`)."""
    return _measure("matmul", torch.device(device), threads, dtype, remeasure)


@functools.cache
def measured_bandwidth(device: str, threads: int, remeasure: bool = False) -> dict[str, Any]:
    """A device's memory bandwidth, bytes read + written per second by the fastest streaming kernel (cache
    entry ``bytes_s``, ``method``, ...)."""
    return _measure("streams", torch.device(device), threads, "fp32", remeasure)


# ---------------------------------------------------------------------------------------- launch-boundness


@dataclass(frozen=True)
class KernelSpan:
    """A GPU activity (kernel, memcpy, memset) of a trace: the thread and time (s) of the CPU call that
    launched it, and when it ran on the device (start and duration, s)."""

    launch_tid: Any
    launch_ts: float
    start: float
    duration: float


_DEVICE_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")
_LAUNCH_CATEGORIES = ("cuda_runtime", "cuda_driver")


def kernel_spans(events: Iterable[dict[str, Any]]) -> list[KernelSpan]:
    """The device activities of a Chrome trace (``torch.profiler`` export), each joined to its launch by
    the ``correlation`` id; times in seconds."""
    launches: dict[Any, dict[str, Any]] = {}
    device: list[dict[str, Any]] = []
    for event in events:
        category = event.get("cat")
        if category in _LAUNCH_CATEGORIES and "correlation" in event.get("args", {}):
            launches[event["args"]["correlation"]] = event
        elif category in _DEVICE_CATEGORIES:
            device.append(event)
    spans = []
    for event in device:
        launch = launches.get(event.get("args", {}).get("correlation"))
        if launch is not None:
            spans.append(
                KernelSpan(launch["tid"], launch["ts"] * 1e-6, event["ts"] * 1e-6, event.get("dur", 0) * 1e-6)
            )
    return spans


def step_windows(events: Iterable[dict[str, Any]]) -> list[tuple[float, float]]:
    """``(start, end)`` in seconds of every ``ProfilerStep#N`` range of a trace, in order."""
    windows = [
        (event["ts"] * 1e-6, (event["ts"] + event["dur"]) * 1e-6)
        for event in events
        if event.get("ph") == "X" and str(event.get("name", "")).startswith("ProfilerStep#")
    ]
    return sorted(windows)


def busy_seconds(intervals: Iterable[tuple[float, float]]) -> float:
    """Length of the union of ``(start, end)`` intervals."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def launch_stats(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Per profiled step: kernels launched in it and the share of its wall time the GPU is idle; medians
    over the steps and ``launch_bound`` (see the module docstring). Steps end with a synchronisation."""
    spans = kernel_spans(events)
    idle, counts = [], []
    for start, end in step_windows(events):
        own = [s for s in spans if start <= s.launch_ts <= end]
        window = max([end, *(s.start + s.duration for s in own)]) - start
        idle.append(1 - busy_seconds((s.start, s.start + s.duration) for s in own) / window)
        counts.append(len(own))
    if not idle:
        return {"launch_bound": None, "launch": {"applies": True, "why": "no profiled step in the trace"}}
    share = statistics.median(idle)
    return {
        "launch_bound": share >= LAUNCH_BOUND_IDLE_SHARE,
        "launch": {
            "applies": True,
            "gpu_idle_share": share,
            "gpu_idle_share_by_step": idle,
            "kernels_per_step": statistics.median(counts),
            "steps": len(idle),
            "threshold": LAUNCH_BOUND_IDLE_SHARE,
        },
    }


NOT_APPLICABLE = {
    "launch_bound": None,
    "launch": {
        "applies": False,
        "why": "CPU: operators run synchronously in the calling thread, nothing is launched",
    },
}


def synchronized(step: Callable[[], None], device: torch.device) -> Callable[[], None]:
    """``step`` followed by a device synchronisation (a CUDA step's kernels then finish inside it)."""
    if device.type != "cuda":
        return step

    def run() -> None:
        step()
        torch.cuda.synchronize(device)

    return run


def launch_fields(step: Callable[[], None], device: torch.device, steps: int = 3) -> dict[str, Any]:
    """``launch_bound`` and ``launch`` of a prepared step: on a GPU from ``steps`` profiled steps (after one
    warm-up step), on the CPU :data:`NOT_APPLICABLE`."""
    if device.type != "cuda":
        return NOT_APPLICABLE
    from torch.profiler import ProfilerActivity, profile, schedule

    run = synchronized(step, device)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "trace.json"
        with profile(
            activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA],
            schedule=schedule(wait=0, warmup=1, active=steps),
            on_trace_ready=lambda prof: prof.export_chrome_trace(str(path)),
        ) as prof:
            for _ in range(1 + steps):
                run()
                prof.step()
        events = json.loads(path.read_text()).get("traceEvents", [])
    return launch_stats(events)
