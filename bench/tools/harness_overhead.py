"""What the harness adds to a step: its timed step beside a plain PyTorch loop over the same model.

``python bench/tools/harness_overhead.py --variant lora --model bert-base --batch-size 8``
builds the variant as the harness does (:func:`adapterdrop.measure.prepare.prepare_step` on
:func:`~adapterdrop.measure.prepare.group_context`), then times, in alternating rounds in one process,
(a) the harness's sample of its step (:func:`adapterdrop.measure.timing.sample`) and (b) the loop a user
writes by hand over the same model and batch: ``loss = cross_entropy(model(ids), labels); loss.backward();
opt.step(); opt.zero_grad(set_to_none=True)`` with its own ``torch.optim.AdamW(fused=True)``, timed with
``time.perf_counter`` around ``number`` steps (``torch.set_num_threads`` once). For inference the loop is
``model(ids)`` under ``torch.inference_mode()``. It prints both medians (seconds per step) and the harness's
overhead, harness median / plain median - 1, with the 95% paired interval of that ratio.

``--hf-forward`` (for ``full``) makes the plain loop run the ``transformers`` model's own forward over the
same weights (``head(base(ids).last_hidden_state)``) instead of the variant's forward: the overhead is then
what the layer runner adds to full fine-tuning, the baseline of every speedup over ``full``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from adapterdrop.measure.load import LoadTracker, describe_load
from adapterdrop.measure.prepare import group_context, prepare_step
from adapterdrop.measure.stats import paired_speedup_interval, ratio_of_medians
from adapterdrop.measure.timing import calls_per_sample, sample, timed_call
from adapterdrop.scenario import Scenario


class HFForward(torch.nn.Module):
    """``full``'s weights run by the ``transformers`` model's own forward, then the same head."""

    def __init__(self, full: torch.nn.Module) -> None:
        super().__init__()
        self.base, self.head = full.base, full.head

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.base(input_ids=ids).last_hidden_state)


def plain_loop(model: torch.nn.Module, ids: torch.Tensor, labels: torch.Tensor, train: bool):
    """The step as a user writes it, and ``run(number)``: seconds of ``number`` such steps."""
    if train:
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-4, fused=True)

        def step() -> None:
            loss = torch.nn.functional.cross_entropy(model(ids), labels)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    else:

        def step() -> None:
            with torch.inference_mode():
                model(ids)

    def run(number: int) -> float:
        start = time.perf_counter()
        for _ in range(number):
            step()
        return time.perf_counter() - start

    return step, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="lora")
    parser.add_argument("--model", default="bert-base")
    parser.add_argument("--phase", default="train", choices=("train", "infer"))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--min-sample-time", type=float, default=0.5)
    parser.add_argument("--hf-forward", action="store_true", help="plain loop: the transformers forward")
    args = parser.parse_args()
    scenario = Scenario(
        model=args.model,
        variant=args.variant,
        phase=args.phase,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        threads=args.threads,
    )
    torch.set_num_threads(args.threads)
    with LoadTracker() as load:
        context = group_context(scenario)
        prepared = prepare_step(scenario, context)
        batch = context.batch
        plain_model = HFForward(prepared.model) if args.hf_forward else prepared.model
        step, run = plain_loop(plain_model, batch.input_ids, batch.labels, args.phase == "train")
        warm = [timed_call(prepared.step) for _ in range(2)] + [timed_call(step) for _ in range(2)]
        number = calls_per_sample(min(warm), args.min_sample_time)
        harness: list[float] = []
        plain: list[float] = []
        for index in range(args.rounds):
            for name in ("harness", "plain") if index % 2 == 0 else ("plain", "harness"):
                if name == "harness":
                    harness.append(sample(prepared.step, args.threads, number).mean)
                else:
                    plain.append(run(number) / number)
    fields = load.fields()
    state = describe_load(fields) if fields.get("loaded") else "not loaded"
    print(
        f"{args.variant} {args.model} {args.phase} b={args.batch_size} s={args.seq_len} "
        f"threads={args.threads}: {args.rounds} rounds of {number} step(s); {state}"
    )
    ratio = ratio_of_medians(plain, harness)  # plain median / harness median
    low, high = paired_speedup_interval(plain, harness) or (float("nan"), float("nan"))
    print(
        f"  harness median {statistics.median(harness) * 1e3:.2f} ms/step, "
        f"plain loop {statistics.median(plain) * 1e3:.2f} ms/step"
    )
    print(
        f"  harness overhead = harness / plain - 1 = {1 / ratio - 1:+.2%} "
        f"[95%: {1 / high - 1:+.2%}, {1 / low - 1:+.2%}]"
    )


if __name__ == "__main__":
    main()
