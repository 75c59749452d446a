"""``breakdown.md``: the profile of one or two variants as markdown tables (from ``breakdown.json``).

Every time is the median over the profiled steps ± half their range; every ratio is printed beside the
two numbers it is made of. FLOPs count 2 per multiply-add (GFLOPs = 1e9 FLOPs), bytes are GB (1e9).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

PASSES = ("forward", "backward")


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def _ms(values: Sequence[float] | None) -> str:
    """``12.3 ±0.4`` ms: median of per-step seconds ± half their range."""
    if not values:
        return "-"
    half = (max(values) - min(values)) / 2
    return f"{_median(values) * 1e3:.2f} ±{half * 1e3:.2f}"


def _g(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value / 1e9:.{digits}f}"


def _ratio(top: float | None, bottom: float | None) -> str:
    return f"{top / bottom:.3f}" if top and bottom else "-"


def _count(value: int | float | None) -> str:
    return "-" if value is None else f"{int(value):,}"


def _copies(row: dict[str, Any]) -> str:
    low, high = row.get("copies_in"), row.get("copies_out")
    if low is None and high is None:
        return "-"
    if low is None or high is None or low == high:
        return f"{low or high:g}"
    return f"{low:g}→{high:g}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _pass_time(row: dict[str, Any], phase: str) -> list[float]:
    return row[phase]["time_s"] if phase in row else []


def _flops_per_s(row: dict[str, Any]) -> str:
    flops = sum(row[p]["flops"] for p in PASSES)
    seconds = sum(_median(row[p]["time_s"]) for p in PASSES)
    return f"{flops / seconds / 1e9:.1f}" if flops and seconds > 0 else "-"


def render_markdown(result: dict[str, Any]) -> str:
    """The whole ``breakdown.md``."""
    variants: dict[str, Any] = result["variants"]
    names = list(variants)
    first = variants[names[-1]]["scenario"]
    title = " vs ".join(reversed(names)) if len(names) > 1 else names[0]
    schedule = result["schedule"]
    lines = [
        f"# Profile: {title}",
        "",
        f"{first['phase']}, {first['model']}, batch {first['batch_size']}, sequence {first['seq_len']}, "
        f"{first['device']} {first['dtype']} ({first['precision']}), {first['threads']} thread(s); "
        f"made {result['created_at']} by",
        "",
        f"    {result['command']}" if result["command"] else "    (no command recorded)",
        "",
        f"The profiler skipped {schedule['wait']} step(s), warmed up for {schedule['warmup']} and recorded "
        f"{schedule['active']}: times are the median over the recorded steps ± half their range (min-max), "
        "with the profiler on. FLOPs (2 per multiply-add) and bytes moved come from one counted step. "
        "Open the trace(s) in https://ui.perfetto.dev or chrome://tracing: "
        + ", ".join(f"`{variants[n]['trace']}`" for n in names)
        + "."
        + (f" Host allocator: {result['host_allocator']}." if result.get("host_allocator") else ""),
        "",
    ]
    if result["records"]:
        lines += _harness(result["records"])
    if len(names) > 1:
        lines += _side_by_side(variants[names[0]], variants[names[1]], names[0], names[1])
    for name in names:
        lines += _variant(name, variants[name])
    return "\n".join(lines) + "\n"


def _harness(records: list[dict[str, Any]]) -> list[str]:
    rows = []
    for r in records:
        if r["status"] != "ok":
            rows.append([r["variant"], r["status"], *["-"] * 10])
            continue
        ci = r.get("speedup_ci")
        rows.append(
            [
                r["variant"],
                "ok" + (" (noisy)" if r.get("noisy") else ""),
                f"{r['time_median_s'] * 1e3:.2f}",
                f"{r['time_iqr_s'] * 1e3:.2f}",
                f"{r['speedup']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
                if r.get("speedup")
                else "-",
                _g(r.get("flops_step")),
                f"{r['ideal_speedup']:.3f}" if r.get("ideal_speedup") else "-",
                _g(r.get("achieved_flops_s"), 1),
                _g(r.get("peak_flops_s"), 1),
                f"{r['mfu']:.3f}" if r.get("mfu") is not None else "-",
                {True: "yes", False: "no", None: "n/a"}[r.get("launch_bound")],
                f"{r['peak_memory_bytes'] / 2**20:.0f}" if r.get("peak_memory_bytes") else "-",
            ]
        )
    header = (
        "variant",
        "status",
        "median ms",
        "IQR ms",
        "speedup [95% CI]",
        "GFLOPs/step",
        "FLOP ideal",
        "GFLOP/s",
        "peak GFLOP/s",
        "MFU",
        "launch-bound",
        "peak MiB",
    )
    peak = next((r.get("peak_flops_source") for r in records if r.get("peak_flops_source")), None)
    return [
        "## Measured by the harness (interleaved rounds, one run)",
        "",
        "The same step without the profiler, timed as `adapterdrop measure` times it: speedup = the "
        "baseline's median / the variant's, FLOP ideal = the baseline's GFLOPs / the variant's, "
        "MFU = GFLOP/s / peak GFLOP/s (GFLOP/s = GFLOPs per step / median).",
        "",
        *_table(header, rows),
        "",
        f"Peak: {peak}." if peak else "",
        "",
    ]


def _step_total(profile: dict[str, Any]) -> list[float]:
    return profile["step_s"]


def _side_by_side(base: dict[str, Any], other: dict[str, Any], base_name: str, name: str) -> list[str]:
    b_step, o_step = _median(_step_total(base)), _median(_step_total(other))
    b_flops = sum(base["flops"].values())
    o_flops = sum(other["flops"].values())
    b_roof, o_roof = base["roofline"]["roofline_s"], other["roofline"]["roofline_s"]
    summary = [
        ["profiled step ms", _ms(base["step_s"]), _ms(other["step_s"]), _ratio(b_step, o_step)],
        *[
            [
                f"{phase} ms",
                _ms(base["phases"].get(phase)),
                _ms(other["phases"].get(phase)),
                _ratio(_median(base["phases"].get(phase, [])), _median(other["phases"].get(phase, []))),
            ]
            for phase in ("forward", "backward", "optimizer")
            if phase in base["phases"]
        ],
        *[
            [
                f"{phase} GFLOPs",
                _g(base["flops"][phase]),
                _g(other["flops"][phase]),
                _ratio(base["flops"][phase], other["flops"][phase]),
            ]
            for phase in PASSES
        ],
        ["step GFLOPs", _g(b_flops), _g(o_flops), _ratio(b_flops, o_flops)],
        ["roofline ms", f"{b_roof * 1e3:.2f}", f"{o_roof * 1e3:.2f}", _ratio(b_roof, o_roof)],
    ]
    lines = [
        f"## Side by side: {name} against {base_name}",
        "",
        f"The last column is {base_name} / {name}: for times the speedup of the profiled steps, for GFLOPs "
        "the FLOP ideal, for the roofline the roofline ideal (bytes moved as well as FLOPs).",
        "",
        *_table(("", base_name, name, "ratio"), summary),
        "",
        "### Per layer",
        "",
        "copies: how many copies of the batch a layer ran on (1 = once for every task; N→M: it forked). "
        "Δ ms = the time the variant saves in that layer, forward + backward.",
        "",
    ]
    by_name = {row["name"]: row for row in other["layers"]}
    rows = []
    for row in base["layers"]:
        twin = by_name.get(row["name"])
        if twin is None:
            continue
        saved = sum(_median(row[p]["time_s"]) - _median(twin[p]["time_s"]) for p in PASSES)
        rows.append(
            [
                row["name"],
                f"{_copies(row)} / {_copies(twin)}",
                f"{_g(row['forward']['flops'])} / {_g(twin['forward']['flops'])}",
                f"{_g(row['backward']['flops'])} / {_g(twin['backward']['flops'])}",
                f"{_ms(row['forward']['time_s'])} / {_ms(twin['forward']['time_s'])}",
                f"{_ms(row['backward']['time_s'])} / {_ms(twin['backward']['time_s'])}",
                f"{saved * 1e3:.2f}",
            ]
        )
    header = ("layer", "copies", "fwd GFLOPs", "bwd GFLOPs", "fwd ms", "bwd ms", "Δ ms")
    lines += [f"Each cell: {base_name} / {name}.", "", *_table(header, rows), "", "### Per module", ""]
    by_module = {row["name"]: row for row in other["modules"]}
    rows = []
    for row in base["modules"]:
        twin = by_module[row["name"]]
        phases = [p for p in ("forward", "backward", "optimizer") if p in row]
        seconds = [sum(_median(r[p]["time_s"]) for p in phases if p in r) for r in (row, twin)]
        rows.append(
            [
                row["name"],
                f"{_g(row['forward']['flops'])} / {_g(twin['forward']['flops'])}",
                f"{_g(row['backward']['flops'])} / {_g(twin['backward']['flops'])}",
                f"{seconds[0] * 1e3:.2f} / {seconds[1] * 1e3:.2f}",
                f"{(seconds[0] - seconds[1]) * 1e3:.2f}",
            ]
        )
    lines += [
        f"Each cell: {base_name} / {name}; ms = forward + backward (+ optimizer) medians.",
        "",
        *_table(("module", "fwd GFLOPs", "bwd GFLOPs", "ms", "Δ ms"), rows),
        "",
    ]
    return lines


def _variant(name: str, profile: dict[str, Any]) -> list[str]:
    util = profile["utilization"]
    achieved = util["achieved_flops_s"]
    mfu = util["mfu"]
    lines = [
        f"## {name}",
        "",
        f"Parameters {_count(profile['params']['params_total'])}, trainable "
        f"{_count(profile['params']['params_trainable'])}; optimizer {profile['optimizer'] or '-'}; "
        f"profiled step {_ms(profile['step_s'])} ms, "
        + ", ".join(f"{phase} {_ms(times)} ms" for phase, times in profile["phases"].items())
        + f"; {_g(util['flops_step'])} GFLOPs per step → {_g(_median(achieved), 1)} GFLOP/s"
        + (
            f", MFU {_median(mfu):.3f} (peak {_g(util['peak_flops_s'], 1)} GFLOP/s: "
            f"{util['peak_flops_source']})"
            if mfu
            else f" (no peak: {util['peak_flops_source']})"
        )
        + ".",
        "",
        "### Shares of the step",
        "",
    ]
    share_rows = [
        [
            s["name"],
            _ms(s["time_s"]),
            f"{_median(s['time_share']):.1%}",
            _g(s["flops"]),
            f"{s['flops_share']:.1%}",
        ]
        for s in profile["shares"]
    ]
    lines += [
        *_table(("part", "ms", "share of time", "GFLOPs", "share of FLOPs"), share_rows),
        "",
        "### Per layer",
        "",
    ]
    layer_rows = [
        [
            row["name"],
            _copies(row),
            _g(row["forward"]["flops"]),
            _g(row["backward"]["flops"]),
            _ms(row["forward"]["time_s"]),
            _ms(row["backward"]["time_s"]),
            _flops_per_s(row),
            _count(row["params"]),
            _count(row["trainable"]),
        ]
        for row in profile["layers"]
    ]
    header = (
        "layer",
        "copies",
        "fwd GFLOPs",
        "bwd GFLOPs",
        "fwd ms",
        "bwd ms",
        "GFLOP/s",
        "params",
        "trainable",
    )
    lines += [*_table(header, layer_rows), "", "### Per module", ""]
    module_rows = [
        [
            row["name"],
            _g(row["forward"]["flops"]),
            _g(row["backward"]["flops"]),
            _ms(row["forward"]["time_s"]),
            _ms(row["backward"]["time_s"]),
            _ms(_pass_time(row, "optimizer")),
            _g(sum(row[p]["bytes"] for p in ("forward", "backward", "optimizer") if p in row), 3),
            _count(row["params"]),
            _count(row["trainable"]),
        ]
        for row in profile["modules"]
    ]
    header = (
        "module",
        "fwd GFLOPs",
        "bwd GFLOPs",
        "fwd ms",
        "bwd ms",
        "optimizer ms",
        "GB moved",
        "params",
        "trainable",
    )
    lines += [*_table(header, module_rows), ""]
    lines += _roofline(profile)
    lines += _memory(profile["memory"])
    if "fvcore" in profile:
        lines += _fvcore(profile["fvcore"])
    lines += _launch(profile["launch"], profile["ranges_off"], profile["step_s"])
    return lines


def _roofline(profile: dict[str, Any]) -> list[str]:
    roof = profile["roofline"]
    rows = []
    for phase, values in roof["phases"].items():
        measured = profile["phases"].get(phase, [])
        rows.append(
            [
                phase,
                _g(values["flops"]),
                _g(values["bytes"]),
                f"{values['compute_s'] * 1e3:.2f}",
                f"{values['memory_s'] * 1e3:.2f}",
                f"{values['roofline_s'] * 1e3:.2f}",
                _ms(measured),
                _ratio(_median(measured), values["roofline_s"]),
            ]
        )
    measured_step = sum(_median(profile["phases"].get(p, [])) for p in roof["phases"])
    rows.append(
        [
            "step",
            "",
            "",
            "",
            "",
            f"{roof['roofline_s'] * 1e3:.2f}",
            f"{measured_step * 1e3:.2f}",
            _ratio(measured_step, roof["roofline_s"]),
        ]
    )
    ops = [
        [
            op["phase"],
            op["operator"],
            f"{op['calls']:g}",
            _g(op["flops"]),
            _g(op["bytes"]),
            f"{op['intensity']:.1f}" if op["intensity"] is not None else "-",
            op["bound"],
            f"{op['roofline_s'] * 1e3:.2f}",
        ]
        for op in roof["operators"]
    ]
    return [
        "### Roofline",
        "",
        f"Peak {roof['peak_flops_s'] / 1e9:.1f} GFLOP/s ({roof['peak_source']}); bandwidth "
        f"{roof['bandwidth_bytes_s'] / 1e9:.1f} GB/s ({roof['bandwidth_source']}); ridge "
        f"{roof['ridge_flops_per_byte']:.1f} FLOPs/byte. Roofline ms = Σ over operator calls of "
        "max(FLOPs / peak, bytes / bandwidth); compute ms = FLOPs / peak; memory ms = bytes / bandwidth.",
        "",
        *_table(
            (
                "phase",
                "GFLOPs",
                "GB moved",
                "compute ms",
                "memory ms",
                "roofline ms",
                "measured ms",
                "measured / roofline",
            ),
            rows,
        ),
        "",
        "Operators with the largest roofline time:",
        "",
        *_table(("phase", "operator", "calls", "GFLOPs", "GB", "FLOPs/byte", "bound", "roofline ms"), ops),
        "",
    ]


def _memory(mem: dict[str, Any]) -> list[str]:
    phases = mem["phases"]
    timeline = mem["timeline"]
    faults = phases.get("minor_page_faults", {})
    rows = [
        [
            phase,
            f"{phases['peak_bytes'][phase] / 2**20:.1f}",
            f"{timeline['phase_peak_bytes'][phase] / 2**20:.1f}"
            if phase in timeline["phase_peak_bytes"]
            else "-",
            _count(faults.get(phase)),
        ]
        for phase in phases["peak_bytes"]
    ]
    lines = [
        "### Memory",
        "",
        f"Peak of each phase above the step's start, MiB: by `{phases['kind']}` in an unprofiled step, and "
        "from the profiler's allocation events (tensor bytes) in the last profiled step "
        f"({len(timeline['t_s'])} points of its timeline are in `breakdown.json`); minor page faults: pages "
        "the kernel zeroed on first touch in that phase (4 KiB each on most Linux hosts).",
        "",
        *_table(("phase", f"peak ({phases['kind']})", "peak (profiler events)", "minor page faults"), rows),
        "",
    ]
    if "snapshot" in mem:
        lines += [
            f"CUDA allocator snapshot: `{mem['snapshot']}` (open at https://pytorch.org/memory_viz).",
            "",
        ]
    return lines


def _fvcore(fv: dict[str, Any]) -> list[str]:
    rows = [
        [
            r["module"],
            _count(r["torch_flops"]),
            _count(r["fvcore_macs"]),
            _count(r["fvcore_layer_norm"]),
            _count(r["fvcore_flops"]),
            _count(r["difference"]),
            r["why"],
        ]
        for r in fv["rows"]
    ]
    unsupported = ", ".join(f"{op} ×{n}" for op, n in sorted(fv["unsupported_ops"].items())) or "none"
    return [
        "### Forward FLOPs: FlopCounterMode against fvcore",
        "",
        f"{fv['convention']}. fvcore's LayerNorm count (5 per element) has no counterpart in FlopCounterMode "
        "and is left out; converted = 2 × (fvcore MACs − LayerNorm). Handles added to fvcore: "
        f"{', '.join(fv['extra_handles'])}. Totals: FlopCounterMode {_count(fv['torch_flops'])}, fvcore "
        f"converted {_count(fv['fvcore_flops'])} (with a broadcast-aware matmul handle "
        f"{_count(fv['fvcore_broadcast_aware_flops'])}). Operators fvcore counted as zero: {unsupported}.",
        "",
        *_table(
            (
                "module",
                "FlopCounterMode",
                "fvcore MACs",
                "fvcore LayerNorm",
                "converted",
                "difference",
                "why",
            ),
            rows,
        ),
        "",
        "<details><summary>fvcore's own table (flop_count_table, MACs)</summary>",
        "",
        fv["table"],
        "",
        "</details>",
        "",
    ]


def _launch(launch: dict[str, Any], ranges_off: dict[str, Any], step_s: list[float]) -> list[str]:
    detail = launch["launch"]
    if detail.get("applies"):
        text = (
            f"launch-bound: {'yes' if launch['launch_bound'] else 'no'} — the GPU idled "
            f"{detail['gpu_idle_share']:.1%} of a step between kernels (median of {detail['steps']} steps; "
            f"threshold {detail['threshold']:.0%}), {detail['kernels_per_step']:g} kernels per step."
        )
    else:
        text = f"launch-bound: does not apply ({detail['why']})."
    cost = ranges_off["seconds_per_step"]
    share = cost / _median(step_s) if step_s and _median(step_s) else 0.0
    return [
        "### Launches and the cost of the named regions",
        "",
        text,
        "",
        f"When nothing traces them, the {ranges_off['calls_per_step']:g} region calls of a step cost "
        f"{ranges_off['seconds_per_call'] * 1e9:.0f} ns each over a direct call: {cost * 1e6:.1f} µs per "
        f"step, {share:.3%} of the profiled step.",
        "",
    ]
