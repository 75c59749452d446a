"""Does an untimed call before every sample change a ratio? One interleaved run answers it.

``python bench/tools/warm_calls.py --model bert-small --phase train --batch-size 1 --variants full adapter``
builds the group as the harness does (:func:`adapterdrop.measure.prepare.group_context`, ``prepare_step``),
then times every variant two ways in the same rotated rounds: *cold*, a sample of ``number`` calls right after
another variant's sample, and *warm*, one untimed call first (``sample_warmup_steps = 1``, the harness's
default since this comparison). It prints each variant's median seconds per step both ways (their difference
is what interleaving costs a sample), and the speedup of each variant over the first, cold and warm, each with
its 95% paired interval, so the two ratios are compared within one run on one machine state.
"""

from __future__ import annotations

import argparse
import statistics

from adapterdrop.measure.load import LoadTracker, describe_load
from adapterdrop.measure.prepare import group_context, prepare_step
from adapterdrop.measure.stats import paired_speedup_interval, ratio_of_medians
from adapterdrop.measure.timing import calls_per_sample, fixed_threads, rotations, sample, timed_call
from adapterdrop.scenario import Scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bert-small")
    parser.add_argument("--phase", default="train", choices=("train", "infer"))
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=["full", "adapter"])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--min-sample-time", type=float, default=0.05)
    args = parser.parse_args()
    common = dict(
        model=args.model,
        phase=args.phase,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        threads=args.threads,
        baseline=args.variants[0],
    )
    scenarios = [Scenario(variant=v, **common) for v in args.variants]
    with fixed_threads(args.threads), LoadTracker() as load:
        context = group_context(scenarios[0])
        steps, numbers = {}, {}
        for scenario in scenarios:
            prepared = prepare_step(scenario, context)
            warm = [timed_call(prepared.step) for _ in range(3)]
            steps[scenario.variant] = prepared.step
            numbers[scenario.variant] = calls_per_sample(min(warm[1:]), args.min_sample_time)
        callables = [(name, calls) for name in steps for calls in (0, 1)]
        samples: dict[tuple[str, int], list[float]] = {c: [] for c in callables}
        for order in rotations(callables, args.rounds):
            for name, calls in order:
                taken = sample(steps[name], args.threads, numbers[name], name, warmup_calls=calls)
                samples[(name, calls)].append(taken.mean)
    state = describe_load(load.fields()) if load.fields().get("loaded") else "not loaded"
    cell = f"{args.model} {args.phase} b={args.batch_size} s={args.seq_len} threads={args.threads}"
    print(f"{cell}, {args.rounds} rounds; {state}")
    base = args.variants[0]
    for name in steps:
        cold, warm = statistics.median(samples[(name, 0)]), statistics.median(samples[(name, 1)])
        print(
            f"  {name}: median {cold * 1e3:.2f} ms cold, {warm * 1e3:.2f} ms warm "
            f"({numbers[name]} call(s) per sample)"
        )
    for name in args.variants[1:]:
        for calls, label in ((0, "cold"), (1, "warm")):
            speedup = ratio_of_medians(samples[(base, calls)], samples[(name, calls)])
            low, high = paired_speedup_interval(samples[(base, calls)], samples[(name, calls)]) or (0, 0)
            print(f"  {base}/{name} {label}: {speedup:.3f} [{low:.3f}, {high:.3f}]")


if __name__ == "__main__":
    main()
