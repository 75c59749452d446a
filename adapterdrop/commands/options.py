"""Options and helpers shared by the subcommands: argument types, machine and grid flags, the preset a
command line describes (through the planner, :mod:`adapterdrop.plan`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adapterdrop.errors import AdapterDropError
from adapterdrop.scenario import PHASES


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


def exec_name(text: str) -> str:
    """An execution mode's canonical name (``eager``, ``compile[:mode=M]``, ``cudagraph``)."""
    from adapterdrop.scenario import ScenarioError, canonical_exec

    try:
        return canonical_exec(text)
    except ScenarioError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


DTYPES = ("fp32", "fp16", "bf16")
#: what a sweep from flags measures when --phase, --batch-size or --seq-len is left out
SWEEP_PHASES, SWEEP_BATCH_SIZES, SWEEP_SEQ_LENS = ("train", "infer"), (8,), (128,)
#: where results go by default: RESULTS_DIR/PRESET.jsonl, and the main job's report into RESULTS_DIR/PRESET/
RESULTS_DIR = Path("results")


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
        "--exec",
        action="append" if sweep else "store",
        type=exec_name,
        metavar="MODE",
        help="execution mode: eager, compile[:mode=M] (torch.compile, M: default, reduce-overhead, "
        "max-autotune, max-autotune-no-cudagraphs) or cudagraph (CUDA graphs; a GPU only)"
        + ("; repeat for several, one group per mode; overrides the preset" if sweep else "; default eager"),
    )
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


def add_model_option(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--model",
        metavar="MODEL",
        help="a model preset (tiny, bert-small, bert-base, ... encoders; llama-tiny, llama-small, "
        "llama-3.2-1b, qwen2.5-1.5b, ... decoders), the path of a transformers config.json (a BERT-style "
        "encoder or a causal LM), or a Hugging Face model folder holding one (only the config is read; "
        f"weights are random); default {default}",
    )


def add_grid_options(parser: argparse.ArgumentParser, *, single: bool) -> None:
    add_model_option(parser, "bert-small" if single else "the preset's; bert-small for a sweep from flags")
    if single:
        parser.add_argument("--variant", required=True, help="variant to measure, e.g. adapterdrop:n=5")
        parser.add_argument(
            "--phase",
            choices=PHASES,
            default="infer",
            help="the workload: train, infer (encoders), prefill, decode (decoders); default infer",
        )
        parser.add_argument("--batch-size", type=positive_int, default=8, help="default 8")
        parser.add_argument("--seq-len", type=positive_int, default=128, help="default 128")
    else:
        parser.add_argument(
            "--variant",
            action="append",
            metavar="VARIANT",
            help="variant to measure (repeat for several); builds a one-comparison grid instead of --preset",
        )
        parser.add_argument(
            "--phase",
            action="append",
            choices=PHASES,
            help=f"repeatable (default: {' and '.join(SWEEP_PHASES)})",
        )
        parser.add_argument(
            "--batch-size",
            action="append",
            type=positive_int,
            help=f"sequences per step; repeatable (default {_listed(SWEEP_BATCH_SIZES)})",
        )
        parser.add_argument(
            "--seq-len",
            action="append",
            type=positive_int,
            help=f"tokens per sequence; repeatable (default {_listed(SWEEP_SEQ_LENS)})",
        )
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
            phases=args.phase or SWEEP_PHASES,
            batch_sizes=args.batch_size or SWEEP_BATCH_SIZES,
            seq_lens=args.seq_len or SWEEP_SEQ_LENS,
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
        execs=[args.exec] if isinstance(args.exec, str) else args.exec,
        precision=args.precision,
        threads=args.threads,
        timing=timing_from_args(args, preset.timing),
    )


def _listed(values: Sequence[Any]) -> str:
    return ", ".join(str(value) for value in values)


def results_path(preset_name: str) -> Path:
    """The default results file of a preset: ``results/NAME.jsonl`` (``results/cli.jsonl`` from flags)."""
    return RESULTS_DIR / f"{preset_name}.jsonl"


def summary(records: Sequence[Any], path: Path) -> str:
    """One line: how many records were written where, per status, and how many of them are noisy or
    were measured while other processes loaded the machine."""
    counts: dict[str, int] = {}
    for record in records:
        counts[record.status] = counts.get(record.status, 0) + 1
    if not counts:
        return f"0 record(s) written to {path} (nothing new)"
    detail = ", ".join(f"{status} {count}" for status, count in sorted(counts.items()))
    noisy = sum(1 for record in records if record.noisy)
    loaded = sum(1 for record in records if record.status == "ok" and record.load.get("loaded"))
    return (
        f"{len(records)} record(s) written to {path} ({detail}; {noisy} noisy, {loaded} measured under load)"
    )


def check_no_errors(records: Sequence[Any], path: Path | str) -> None:
    """An :class:`AdapterDropError` saying how many scenarios ended in ``error`` and where their records
    are (``oom`` and ``skipped`` are outcomes, not failures)."""
    errors = [record for record in records if record.status == "error"]
    if errors:
        first = errors[0]
        raise AdapterDropError(
            f"{len(errors)} of {len(records)} scenario(s) ended in error (first: {first.variant}"
            f" {first.phase} b={first.batch_size} s={first.seq_len}: {first.error}); see {path}"
        )
