"""``adapterdrop profile``: where the time, FLOPs and memory of a variant go (and with ``--vs``, why it is
faster than another), written under ``profiles/<variant>-<phase>-<settings>/``."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from adapterdrop.commands import AddCommand
from adapterdrop.commands.options import DTYPES, non_negative_int, positive_int
from adapterdrop.errors import AdapterDropError

#: where profiles go unless --out says otherwise
PROFILES_DIR = Path("profiles")


def cmd_profile(args: argparse.Namespace) -> int:
    if args.measure_peaks:
        return _measure_peaks(args)
    if not args.variant:
        raise AdapterDropError("give the VARIANT to profile (or --measure-peaks)")
    from adapterdrop.backends import REGISTRY, parse_variant
    from adapterdrop.measure.timing import TimingConfig
    from adapterdrop.plan import check_variants_fit, expand_groups, preset_from_flags, with_overrides
    from adapterdrop.profile.session import ProfileOptions, folder_name, profile_group
    from adapterdrop.profile.trace import Schedule

    variants = [args.variant] if args.vs is None else [args.vs, args.variant]
    names = [parse_variant(v).canonical for v in variants]
    if len(set(names)) < len(names):
        raise AdapterDropError(f"--vs names the variant itself ({names[0]}): nothing to compare")
    for name in names:
        if args.phase == "train" and REGISTRY[parse_variant(name).name].inference_only:
            raise AdapterDropError(f"{name} runs inference only; profile it with --phase infer")
    preset = preset_from_flags(
        [names[-1]],
        baseline=names[0],
        phases=[args.phase],
        batch_sizes=[args.batch_size],
        seq_lens=[args.seq_len],
        comparison="profile",
    )
    timing = TimingConfig(rounds=args.rounds) if args.rounds else TimingConfig()
    preset = with_overrides(
        preset,
        models=[args.model],
        devices=[args.device],
        dtypes=[args.dtype] if args.dtype else None,
        precision=args.precision,
        threads=args.threads,
        timing=timing,
    )
    check_variants_fit(args.model, {name: [args.phase] for name in names})
    group = expand_groups(preset)[0]
    options = ProfileOptions(
        steps=Schedule(wait=args.wait, warmup=args.warmup, active=args.steps),
        trace=args.trace,
        timing=None if args.no_measure else preset.timing,
        fvcore=not args.no_fvcore,
    )
    out = args.out / folder_name(group)
    print(f"profiling {' vs '.join(reversed(names))} into {out}/ ...", file=sys.stderr)
    try:
        profile_group(group, options, out, command=command_line(args), log=_progress)
    except RuntimeError as exc:  # out of memory, a kernel the device lacks: one line, no traceback
        from adapterdrop.measure.runner import one_line

        raise AdapterDropError(f"profiling {' vs '.join(reversed(names))} failed: {one_line(exc)}") from None
    print(f"{out / 'breakdown.md'}")
    return 0


def _progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def command_line(args: argparse.Namespace) -> str:
    """The ``adapterdrop profile`` command that makes this profile again (every setting spelled out)."""
    words = ["adapterdrop", "profile", args.variant]
    if args.vs:
        words += ["--vs", args.vs]
    words += ["--model", args.model, "--phase", args.phase, "--batch-size", str(args.batch_size)]
    words += ["--seq-len", str(args.seq_len), "--device", args.device]
    for flag, value in (
        ("--dtype", args.dtype),
        ("--precision", args.precision),
        ("--threads", args.threads),
    ):
        if value is not None:
            words += [flag, str(value)]
    words += ["--steps", str(args.steps), "--wait", str(args.wait), "--warmup", str(args.warmup)]
    if args.out != PROFILES_DIR:
        words += ["--out", str(args.out)]
    if args.trace != "ops":
        words += ["--trace", args.trace]
    if args.rounds:
        words += ["--rounds", str(args.rounds)]
    words += [flag for flag, on in (("--no-measure", args.no_measure), ("--no-fvcore", args.no_fvcore)) if on]
    return " ".join(shlex.quote(word) for word in words)


def _measure_peaks(args: argparse.Namespace) -> int:
    from adapterdrop.measure.timing import fixed_threads
    from adapterdrop.measure.utilization import (
        measured_bandwidth,
        measured_matmul_peak,
        measured_source,
    )

    threads = args.threads or 1
    with fixed_threads(threads):
        peak = measured_matmul_peak(args.device, args.dtype or "fp32", threads, remeasure=True)
        bandwidth = measured_bandwidth(args.device, threads, remeasure=True)
    print(f"peak {peak['flops_s'] / 1e9:.1f} GFLOP/s ({measured_source(peak)})")
    print(f"bandwidth {bandwidth['bytes_s'] / 1e9:.1f} GB/s ({measured_source(bandwidth)})")
    return 0


def register(add: AddCommand) -> None:
    parser = add(
        "profile",
        cmd_profile,
        "profile a variant (and with --vs another, side by side): trace, per-layer and per-module time, "
        "forward and backward FLOPs, memory, utilisation, roofline",
    )
    parser.add_argument(
        "variant", nargs="?", metavar="VARIANT", help="variant to profile, e.g. adapterdrop:n=5"
    )
    parser.add_argument(
        "--vs", metavar="OTHER", help="profile OTHER too and compare (speedup = OTHER / VARIANT)"
    )
    parser.add_argument(
        "--model", default="bert-small", help="model preset or config path (default bert-small)"
    )
    parser.add_argument(
        "--phase",
        choices=("train", "infer", "prefill", "decode"),
        default="infer",
        help="train, infer (encoders), prefill, decode (decoders); default infer",
    )
    parser.add_argument("--batch-size", type=positive_int, default=8, help="default 8")
    parser.add_argument("--seq-len", type=positive_int, default=128, help="default 128")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--dtype", choices=DTYPES, help="default fp32")
    parser.add_argument("--precision", choices=("native", "autocast"), help="default as in measure")
    parser.add_argument("--threads", type=positive_int, help="torch intra-op threads (default: torch's)")
    parser.add_argument(
        "--out",
        type=Path,
        default=PROFILES_DIR,
        help="folder the profile's own folder <variant>-<phase>-<settings>/ is made in (default profiles)",
    )
    parser.add_argument("--steps", type=positive_int, default=3, help="profiled (active) steps (default 3)")
    parser.add_argument("--wait", type=non_negative_int, default=1, help="steps skipped first (default 1)")
    parser.add_argument(
        "--warmup", type=non_negative_int, default=1, help="profiler warm-up steps (default 1)"
    )
    parser.add_argument(
        "--trace",
        choices=("ops", "ranges"),
        default="ops",
        help="what the trace keeps: every operator, or only the named ranges (small; default ops)",
    )
    parser.add_argument("--rounds", type=positive_int, help="harness timing rounds (default 7)")
    parser.add_argument("--no-measure", action="store_true", help="skip the harness measurement (records)")
    parser.add_argument("--no-fvcore", action="store_true", help="skip fvcore's forward table")
    parser.add_argument(
        "--measure-peaks",
        action="store_true",
        help="measure the device's matmul peak and copy bandwidth again (--device, --dtype, --threads), "
        "cache them and print them; do this on an idle machine",
    )
