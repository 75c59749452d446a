"""Throughput of serving N LoRA adapters at once, each implementation against the base model, side by side.

``python bench/tools/serving.py --model llama-small --workloads decode --adapters 2 8 32 --mixes zipf``
builds one :class:`~adapterdrop.serving.steps.ServingSet` per N (the base model, ``peft``'s mixed batch,
the native batched LoRA, one merged model per adapter; for ``parallel``, the fork) and, per workload and N,
times every (implementation, mix) step in the same interleaved, rotated rounds
(:func:`adapterdrop.measure.timing.interleave`). It prints each one's throughput (tokens per second: the
tokens a step produces over its median seconds) and its ratio to the base model of the same mix (both run the
same batch and the same tokens, so the throughput ratio is the ratio of median times), with the 95% paired
interval over rounds (:func:`adapterdrop.measure.stats.paired_speedup_interval`; none under 3 rounds).
``distinct`` runs a batch of N requests (one per adapter) whatever ``--batch-size`` says.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch

from adapterdrop.errors import AdapterDropError
from adapterdrop.families import build_base, model_config
from adapterdrop.measure.stats import paired_speedup_interval, ratio_of_medians
from adapterdrop.measure.timing import (
    TimingConfig,
    calls_per_sample,
    fixed_threads,
    interleave,
    per_round,
    timed_call,
)
from adapterdrop.serving.lora import LoRASpec
from adapterdrop.serving.mixes import MIXES
from adapterdrop.serving.steps import (
    IMPLEMENTATIONS,
    PARALLEL_BOTTLENECK_IMPLEMENTATIONS,
    PARALLEL_IMPLEMENTATIONS,
    WORKLOADS,
    ServingSet,
    ServingStep,
    serving_step,
)

PROG = "adapterdrop"
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        self.exit(2, f"{PROG}: error: {message}\n")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = _Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="llama-tiny", help="a decoder preset, config.json or folder")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    parser.add_argument("--adapters", nargs="+", type=int, default=[2, 8], help="numbers of adapters N")
    parser.add_argument("--mixes", nargs="+", default=list(MIXES), choices=MIXES)
    parser.add_argument("--batch-size", type=int, default=8, help="requests per step (distinct: N)")
    parser.add_argument("--prompt-len", type=int, default=32, help="prompt tokens P (decode: cache length)")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--targets", nargs="+", default=["q_proj", "k_proj", "v_proj", "o_proj"])
    parser.add_argument("--first-layer", type=int, default=0, help="LoRA on layers K..L-1 (the fork's K)")
    parser.add_argument("--device", default="cpu", help="torch device of the models and inputs")
    parser.add_argument("--dtype", default="fp32", choices=tuple(DTYPES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--min-sample-time", type=float, default=0.05, help="seconds a sample lasts at least")
    args = parser.parse_args(argv)
    if min(args.adapters) < 1 or args.batch_size < 1 or args.prompt_len < 1 or args.rank < 1:
        raise AdapterDropError("--adapters, --batch-size, --prompt-len and --rank must be positive")
    try:
        device = torch.device(args.device)
    except RuntimeError as exc:
        raise AdapterDropError(f"--device {args.device!r}: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AdapterDropError(f"--device {args.device}: no CUDA device here")
    return args


def cells(serving: ServingSet, workload: str, args: argparse.Namespace) -> dict[str, ServingStep]:
    """Every step of one workload and N, keyed ``implementation/mix`` (``parallel``: ``implementation``)."""
    if workload == "parallel":
        return {
            impl: serving_step(
                serving, impl, workload, "distinct", serving.spec.num_adapters, args.prompt_len
            )
            for impl in PARALLEL_IMPLEMENTATIONS + PARALLEL_BOTTLENECK_IMPLEMENTATIONS
        }
    steps = {}
    for mix in args.mixes:
        batch = serving.spec.num_adapters if mix == "distinct" else args.batch_size
        for impl in IMPLEMENTATIONS:
            steps[f"{impl}/{mix}"] = serving_step(serving, impl, workload, mix, batch, args.prompt_len)
    return steps


def report(
    workload: str, num_adapters: int, steps: dict[str, ServingStep], times: dict[str, list[float]]
) -> None:
    """One line per step: tokens/s and the ratio to the base model of the same mix with its interval."""
    for name, step in steps.items():
        if name not in times:
            continue
        base_name = "base" + name[name.index("/") :] if "/" in name else "base"
        seconds = statistics.median(times[name])
        rate = f"{seconds * 1e3:9.3f} ms {step.tokens / seconds:12.1f} tokens/s"
        line = f"{workload:8} N={num_adapters:<3} {name:18} {rate}"
        if name != base_name and base_name in times:
            ratio = ratio_of_medians(times[base_name], times[name])
            interval = paired_speedup_interval(times[base_name], times[name])
            shown = f"[{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "(no interval under 3 rounds)"
            line += f"  x{ratio:.3f} of base {shown}"
        print(line, flush=True)
    pairs = [(n, n.replace("native", "peft", 1)) for n in times if n.startswith("native")]  # per mix
    pairs += [("fork", "native"), ("fork-bottleneck", "separate-bottleneck")]  # the paper's shared layers
    for name, other in pairs:  # each from the same run: the other's median over this one's
        if name in times and other in times:
            ratio = ratio_of_medians(times[other], times[name])
            interval = paired_speedup_interval(times[other], times[name])
            shown = f"[{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "(no interval under 3 rounds)"
            print(f"{workload:8} N={num_adapters:<3} {name} over {other}: x{ratio:.3f} {shown}", flush=True)


def run(args: argparse.Namespace) -> None:
    config = model_config(args.model)
    layers = tuple(range(args.first_layer, config.num_hidden_layers))
    if not layers:
        raise AdapterDropError(
            f"--first-layer {args.first_layer} leaves no layer of {config.num_hidden_layers}"
        )
    timing = TimingConfig(rounds=args.rounds, min_sample_time_s=args.min_sample_time)
    print(
        f"{args.model} {args.dtype} on {args.device}, B={args.batch_size}, P={args.prompt_len}, "
        f"r={args.rank}, LoRA on layers {layers[0]}..{layers[-1]}, {args.threads} threads, "
        f"{args.rounds} rounds"
    )
    with fixed_threads(args.threads):
        for num_adapters in args.adapters:
            spec = LoRASpec(
                num_adapters,
                rank=args.rank,
                alpha=2 * args.rank,
                target_modules=tuple(args.targets),
                layers=layers,
            )
            serving = ServingSet(build_base(config).to(args.device, DTYPES[args.dtype]), spec)
            for workload in args.workloads:
                steps = cells(serving, workload, args)
                numbers = {}
                for name, step in steps.items():
                    warm = [timed_call(step.fn) for _ in range(2)]
                    numbers[name] = calls_per_sample(warm[-1], timing.min_sample_time_s)
                measured = interleave(
                    {n: s.fn for n, s in steps.items()},
                    numbers,
                    args.threads,
                    timing,
                    on_error=lambda name, exc: print(f"  failed: {name}: {exc}", flush=True),
                )
                report(workload, num_adapters, steps, {n: per_round(m) for n, m in measured.items()})


def main(argv: list[str] | None = None) -> int:
    try:
        run(parse(argv))
    except (AdapterDropError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
