"""The ``adapterdrop`` console script: sweep, measure, env, variants, report, run.

Bad input ends with one line ``adapterdrop: error: ...`` on stderr and exit status 2 (usage) or 1 (a
value the library rejects, an unreadable file), never with a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from adapterdrop.errors import AdapterDropError

PROG = "adapterdrop"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line: ``adapterdrop: error: <message>``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got '{text}'")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got '{text}'")
    return value


# ---------------------------------------------------------------------------------------------- options

_DTYPES = ("fp32", "fp16", "bf16")


def _add_machine_options(parser: argparse.ArgumentParser, *, sweep: bool) -> None:
    parser.add_argument(
        "--device",
        action="append",
        metavar="DEVICE",
        help="cpu, cuda, cuda:N, or all (every visible GPU, one after another)"
        + ("; repeat for several; overrides the preset" if sweep else "; default cpu"),
    )
    parser.add_argument("--dtype", choices=_DTYPES, help="weights/activations dtype (default fp32)")
    parser.add_argument(
        "--precision",
        choices=("native", "autocast"),
        help="native: model cast to dtype; autocast: fp32 weights under torch.autocast "
        "(default: native for infer, autocast for train with fp16/bf16; fp32 is always native)",
    )
    parser.add_argument(
        "--threads", type=_positive_int, help="torch intra-op threads (default: torch's default)"
    )
    parser.add_argument(
        "--rounds", type=_positive_int, help="interleaved timing rounds (samples per variant)"
    )
    parser.add_argument(
        "--min-sample-time",
        type=_positive_float,
        metavar="SECONDS",
        help="each timing sample runs enough steps to last this long",
    )
    parser.add_argument(
        "--max-rounds",
        type=_positive_int,
        help="add rounds up to this many while a speedup's 95%% interval is wider than the target (±2%%)",
    )
    parser.add_argument("--warmup", type=_non_negative_int, metavar="STEPS", help="untimed warm-up steps")


def _add_grid_options(parser: argparse.ArgumentParser, *, single: bool) -> None:
    parser.add_argument("--model", help="model preset, e.g. tiny, bert-small, bert-base (default bert-small)")
    if single:
        parser.add_argument("--variant", required=True, help="variant to measure, e.g. adapterdrop:n=5")
        parser.add_argument("--phase", choices=("train", "infer"), default="infer", help="default infer")
        parser.add_argument("--batch-size", type=_positive_int, default=8, help="default 8")
        parser.add_argument("--seq-len", type=_positive_int, default=128, help="default 128")
    else:
        parser.add_argument(
            "--variant",
            action="append",
            metavar="VARIANT",
            help="variant to measure (repeat for several); builds a one-comparison grid instead of --preset",
        )
        parser.add_argument("--phase", action="append", choices=("train", "infer"), help="repeatable")
        parser.add_argument("--batch-size", action="append", type=_positive_int, help="repeatable")
        parser.add_argument("--seq-len", action="append", type=_positive_int, help="repeatable")
        parser.add_argument("--comparison", default="cli", help="comparison name stored in the records")
    parser.add_argument(
        "--baseline",
        help="variant the others are compared with, measured interleaved"
        + (" (default: none)" if single else " (default: the first --variant)"),
    )


def _timing(args: argparse.Namespace, base: Any = None) -> Any:
    import dataclasses

    from adapterdrop.measure.timing import TimingConfig

    base = base or TimingConfig()
    return dataclasses.replace(
        base,
        rounds=args.rounds or base.rounds,
        max_rounds=args.max_rounds or (None if args.rounds else base.max_rounds),
        min_sample_time_s=args.min_sample_time or base.min_sample_time_s,
        warmup_steps=base.warmup_steps if args.warmup is None else args.warmup,
    )


# ---------------------------------------------------------------------------------------------- commands


def _preset_from_args(args: argparse.Namespace) -> Any:
    from adapterdrop.plan import load_preset, preset_from_flags

    grid_flags = [
        flag
        for flag, value in (
            ("--variant", args.variant),
            ("--phase", args.phase),
            ("--batch-size", args.batch_size),
            ("--seq-len", args.seq_len),
            ("--baseline", args.baseline),
        )
        if value
    ]
    if args.preset:
        if grid_flags:
            raise AdapterDropError(f"{', '.join(grid_flags)} cannot be combined with --preset")
        preset = load_preset(args.preset)
    else:
        if not args.variant:
            raise AdapterDropError("give --preset NAME or at least one --variant")
        preset = preset_from_flags(
            args.variant,
            baseline=args.baseline,
            phases=args.phase or ("train", "infer"),
            batch_sizes=args.batch_size or (8,),
            seq_lens=args.seq_len or (128,),
            comparison=args.comparison,
        )
    return _with_machine_options(preset, args)


def _with_machine_options(preset: Any, args: argparse.Namespace) -> Any:
    from adapterdrop.plan import with_overrides

    return with_overrides(
        preset,
        models=[args.model] if args.model else None,
        devices=args.device,
        dtypes=[args.dtype] if args.dtype else None,
        precision=args.precision,
        threads=args.threads,
        timing=_timing(args, preset.timing),
    )


def _summary(records: Sequence[Any], path: Path) -> str:
    counts: dict[str, int] = {}
    for record in records:
        counts[record.status] = counts.get(record.status, 0) + 1
    detail = ", ".join(f"{status} {count}" for status, count in sorted(counts.items())) or "nothing new"
    return f"{len(records)} record(s) written to {path} ({detail})"


def cmd_sweep(args: argparse.Namespace) -> int:
    from adapterdrop.sweep import run_sweep

    preset = _preset_from_args(args)
    results = Path(args.results or f"results/{preset.name}.jsonl")
    records = run_sweep(preset, results, progress=not args.no_progress)
    print(_summary(records, results))
    return 0


def cmd_measure(args: argparse.Namespace) -> int:
    from adapterdrop.measure.env import collect_env
    from adapterdrop.measure.runner import measure_group
    from adapterdrop.plan import check_variants_fit, expand_groups, preset_from_flags
    from adapterdrop.results import append_records

    preset = preset_from_flags(
        [args.variant],
        baseline=args.baseline,
        phases=[args.phase],
        batch_sizes=[args.batch_size],
        seq_lens=[args.seq_len],
        comparison="measure",
    )
    preset = _with_machine_options(preset, args)
    groups = expand_groups(preset)
    check_variants_fit(preset.models[0], [s.variant for g in groups for s in g.scenarios])
    records = []
    for group in groups:
        first = group.baseline
        env = collect_env(first.device, first.threads)
        records += measure_group(group.scenarios, preset.timing, baseline=first.variant, env=env)
    if args.results:
        append_records(args.results, records)
    if args.json:
        for record in records:
            print(json.dumps(record.to_dict()))
    else:
        print(format_table(records))
    return 0 if all(r.status in ("ok", "skipped") for r in records) else 1


def _fmt(value: Any, scale: float = 1.0, digits: int = 2) -> str:
    return "-" if value is None else f"{value * scale:.{digits}f}"


def format_table(records: Sequence[Any]) -> str:
    """Records as an aligned text table (ms, samples/s, GFLOPs, MiB)."""
    header = (
        "variant",
        "phase",
        "device",
        "status",
        "median ms",
        "IQR ms",
        "samples/s",
        "GFLOPs/step",
        "speedup",
        "ideal",
        "efficiency",
        "peak MiB",
        "trainable",
    )
    rows = [header]
    for r in records:
        rows.append(
            (
                r.variant,
                r.phase,
                r.device,
                r.status if r.status == "ok" else f"{r.status}: {r.error}",
                _fmt(r.time_median_s, 1e3, 3),
                _fmt(r.time_iqr_s, 1e3, 3),
                _fmt(r.throughput_samples_s, digits=1),
                _fmt(r.flops_step, 1e-9, 3),
                _fmt(r.speedup, digits=3),
                _fmt(r.ideal_speedup, digits=3),
                _fmt(r.efficiency, digits=3),
                _fmt(r.peak_memory_bytes, 1 / 2**20, 1),
                "-" if r.params_trainable is None else f"{r.params_trainable:,}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def cmd_env(args: argparse.Namespace) -> int:
    from adapterdrop.measure.env import collect_env
    from adapterdrop.plan import resolve_devices

    envs = [collect_env(device, args.threads) for device in resolve_devices(args.device or ["cpu"])]
    if args.json:
        for env in envs:
            print(json.dumps(env))
        return 0
    for env in envs:
        width = max(len(key) for key in env)
        print("\n".join(f"{key.ljust(width)}  {value}" for key, value in env.items()))
    return 0


def cmd_variants(args: argparse.Namespace) -> int:
    from adapterdrop.variants import list_variants

    for info in list_variants():
        scope = " (inference only)" if info.inference_only else ""
        print(f"{info.name}{scope}: {info.summary}")
        for option in info.options:
            default = "" if option.default is None else f" [default {option.default}]"
            choices = f" {{{', '.join(option.choices)}}}" if option.choices else ""
            print(f"    {option.name}={option.kind.__name__}{choices}{default}: {option.help}")
    return 0


def _build_report(results: Sequence[Path], out: Path) -> None:
    from adapterdrop.report import build_report

    build_report(list(results), out)


def cmd_report(args: argparse.Namespace) -> int:
    from adapterdrop.results import load_records

    for path in args.results:
        load_records(path)  # a clear error for a missing or corrupt file before the report starts
    _build_report(args.results, args.out)
    print(f"report written to {args.out}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from adapterdrop.plan import load_preset
    from adapterdrop.sweep import run_sweep

    preset = load_preset(args.preset)
    results = Path(args.results or f"results/{preset.name}.jsonl")
    out = Path(args.out or f"reports/{preset.name}")
    records = run_sweep(preset, results, progress=not args.no_progress)
    print(_summary(records, results))
    _build_report([results], out)
    print(f"report written to {out}")
    return 0


# ---------------------------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(
        prog=PROG, description="Benchmark adapter variants of transformer encoders (AdapterDrop)."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(func=func)
        return sub

    sweep = add(
        "sweep",
        cmd_sweep,
        "measure a grid (a preset or flags) into an append-only results file; a rerun skips what is stored",
    )
    sweep.add_argument("--preset", help="preset name (bench/presets/NAME.toml) or path, e.g. quick, paper")
    sweep.add_argument("--results", type=Path, help="JSON Lines results file (default results/PRESET.jsonl)")
    _add_grid_options(sweep, single=False)
    _add_machine_options(sweep, sweep=True)
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    measure = add(
        "measure", cmd_measure, "measure one scenario (optionally against a baseline); print a table"
    )
    _add_grid_options(measure, single=True)
    _add_machine_options(measure, sweep=False)
    measure.add_argument("--results", type=Path, help="also append the records to this results file")
    measure.add_argument("--json", action="store_true", help="print records as JSON lines")

    env = add("env", cmd_env, "print the environment block that every record carries")
    env.add_argument("--device", action="append", help="cpu, cuda, cuda:N or all (default cpu)")
    env.add_argument("--threads", type=_positive_int, help="thread count to report (default: torch's)")
    env.add_argument("--json", action="store_true", help="print JSON")

    add("variants", cmd_variants, "list every variant with its options")

    report = add("report", cmd_report, "plots + markdown from results files")
    report.add_argument("results", nargs="+", type=Path, metavar="RESULTS", help="JSON Lines results files")
    report.add_argument("--out", type=Path, required=True, help="output folder")

    run = add("run", cmd_run, "sweep a preset, then write its report (default: quick)")
    run.add_argument("--preset", default="quick", help="preset name or path (default quick)")
    run.add_argument("--results", type=Path, help="results file (default results/PRESET.jsonl)")
    run.add_argument("--out", type=Path, help="report folder (default reports/PRESET)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:  # AdapterDropError and the library's other ValueErrors
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted (every finished group is saved)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
