"""Options and helpers shared by the subcommands: argument types, machine and grid flags, the preset a
command line describes (through the planner, :mod:`adapterdrop.plan`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adapterdrop.errors import AdapterDropError


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got '{text}'")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got '{text}'")
    return value


DTYPES = ("fp32", "fp16", "bf16")


def add_machine_options(parser: argparse.ArgumentParser, *, sweep: bool) -> None:
    parser.add_argument(
        "--device",
        action="append",
        metavar="DEVICE",
        help="cpu, cuda, cuda:N, or all (every visible GPU, one after another)"
        + ("; repeat for several; overrides the preset" if sweep else "; default cpu"),
    )
    parser.add_argument("--dtype", choices=DTYPES, help="weights/activations dtype (default fp32)")
    parser.add_argument(
        "--precision",
        choices=("native", "autocast"),
        help="native: model cast to dtype; autocast: fp32 weights under torch.autocast "
        "(default: native for infer, autocast for train with fp16/bf16; fp32 is always native)",
    )
    parser.add_argument(
        "--threads", type=positive_int, help="torch intra-op threads (default: torch's default)"
    )
    parser.add_argument("--rounds", type=positive_int, help="interleaved timing rounds (samples per variant)")
    parser.add_argument(
        "--min-sample-time",
        type=positive_float,
        metavar="SECONDS",
        help="each timing sample runs enough steps to last this long",
    )
    parser.add_argument(
        "--max-rounds",
        type=positive_int,
        help="add rounds up to this many while a speedup's 95%% interval is wider than the target (±2%%)",
    )
    parser.add_argument("--warmup", type=non_negative_int, metavar="STEPS", help="untimed warm-up steps")


def add_grid_options(parser: argparse.ArgumentParser, *, single: bool) -> None:
    parser.add_argument("--model", help="model preset, e.g. tiny, bert-small, bert-base (default bert-small)")
    if single:
        parser.add_argument("--variant", required=True, help="variant to measure, e.g. adapterdrop:n=5")
        parser.add_argument("--phase", choices=("train", "infer"), default="infer", help="default infer")
        parser.add_argument("--batch-size", type=positive_int, default=8, help="default 8")
        parser.add_argument("--seq-len", type=positive_int, default=128, help="default 128")
    else:
        parser.add_argument(
            "--variant",
            action="append",
            metavar="VARIANT",
            help="variant to measure (repeat for several); builds a one-comparison grid instead of --preset",
        )
        parser.add_argument("--phase", action="append", choices=("train", "infer"), help="repeatable")
        parser.add_argument("--batch-size", action="append", type=positive_int, help="repeatable")
        parser.add_argument("--seq-len", action="append", type=positive_int, help="repeatable")
        parser.add_argument("--comparison", default="cli", help="comparison name stored in the records")
    parser.add_argument(
        "--baseline",
        help="variant the others are compared with, measured interleaved"
        + (" (default: none)" if single else " (default: the first --variant)"),
    )


def timing_from_args(args: argparse.Namespace, base: Any = None) -> Any:
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


def preset_from_args(args: argparse.Namespace) -> Any:
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
    return with_machine_options(preset, args)


def with_machine_options(preset: Any, args: argparse.Namespace) -> Any:
    from adapterdrop.plan import with_overrides

    return with_overrides(
        preset,
        models=[args.model] if args.model else None,
        devices=args.device,
        dtypes=[args.dtype] if args.dtype else None,
        precision=args.precision,
        threads=args.threads,
        timing=timing_from_args(args, preset.timing),
    )


def summary(records: Sequence[Any], path: Path) -> str:
    counts: dict[str, int] = {}
    for record in records:
        counts[record.status] = counts.get(record.status, 0) + 1
    detail = ", ".join(f"{status} {count}" for status, count in sorted(counts.items())) or "nothing new"
    return f"{len(records)} record(s) written to {path} ({detail})"
