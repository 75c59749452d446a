"""The AdapterDrop paper's published efficiency figures, each with its source, and the measured counterpart.

Rücklé et al., *AdapterDrop: On the Efficiency of Adapters in Transformers*, EMNLP 2021 (arXiv 2010.11918).
The figures are quoted from the paper's text (see /work/shared/PAPER.md of the project); they are never
mixed with measurements: the report shows them in their own column, labelled as the paper's. A measured
counterpart is the ratio of two variants' median times *in one interleaved group* (same process, same
input), i.e. the speedup of the subject over the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from adapterdrop.report.records import Record, family, group_by, option, sort_key

PAPER = "Rücklé et al., AdapterDrop, EMNLP 2021"

#: adapter training-step speedup over full fine-tuning: "up to 60% faster" (§2, Table 1)
ADAPTER_TRAINING_SPEEDUP = 1.60
ADAPTER_TRAINING_SOURCE = "§2, Table 1"
#: adapter inference speed relative to the full model: "4–6% slower", 94–96% of the speed (§2, Table 1)
ADAPTER_INFERENCE_RELATIVE_SPEED = (0.94, 0.96)
ADAPTER_INFERENCE_SOURCE = "§2, Table 1"
#: parallel inference with 5 dropped layers: 21–42% faster for 2–16 tasks, 39% for 8 tasks (§3)
PARALLEL_DROPPED = 5
PARALLEL_K5_SPEEDUP_RANGE = (1.21, 1.42)
PARALLEL_K5_SPEEDUP_8_TASKS = 1.39
PARALLEL_SOURCE = "§3"


@dataclass(frozen=True)
class PaperFigure:
    """One published figure and how to find its counterpart in the records."""

    result: str
    paper: str
    source: str
    phase: str
    reference: Callable[[str], bool]
    subject: Callable[[str], bool]
    needs: str
    per_task_count: bool = False

    def measured(self, records: list[Record]) -> str | None:
        """The measured counterpart in words (per series), or None when the records do not hold it."""
        pairs = _pairs(records, self.phase, self.reference, self.subject)
        if not pairs:
            return None
        lines = []
        for (series,), members in group_by(pairs, lambda p: p[1]["series"]).items():
            prefix = f"[{series}] " if series else ""
            if self.per_task_count:
                by_tasks = group_by(members, lambda p: option(p[1]["variant"], "tasks"))
                lines.append(prefix + "; ".join(f"N={n}: {_summary(m)}" for (n,), m in by_tasks.items()))
            else:
                lines.append(prefix + _summary(members))
        return "<br>".join(lines)


Pair = tuple[Record, Record]


def _pairs(
    records: list[Record], phase: str, reference: Callable[[str], bool], subject: Callable[[str], bool]
) -> list[Pair]:
    """(reference, subject) record pairs measured in the same interleaved group of the same series."""
    pairs = []
    measured = [
        r for r in records if r.get("status") == "ok" and r.get("time_median_s") and r["phase"] == phase
    ]
    for members in group_by(measured, "series", "group").values():
        for ref in (r for r in members if reference(r["variant"])):
            pairs.extend((ref, sub) for sub in members if subject(sub["variant"]) and sub is not ref)
    return pairs


def _speedup(pair: Pair) -> float:
    return pair[0]["time_median_s"] / pair[1]["time_median_s"]


def _in_words(speedup: float) -> str:
    if speedup >= 1:
        return f"{speedup:.2f}× ({speedup - 1:.0%} faster)"
    return f"{speedup:.2f}× of the speed (takes {1 / speedup:.2f}× the time)"


def _span(values: list[int]) -> str:
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}–{high}"


def _summary(pairs: list[Pair]) -> str:
    """The speedups of ``pairs``: the value for one scenario, else the range and the best scenario."""
    pairs = sorted(pairs, key=lambda p: (sort_key(p[1]["batch_size"]), sort_key(p[1]["seq_len"])))
    best = max(pairs, key=_speedup)
    at = f"batch {best[1]['batch_size']}, seq {best[1]['seq_len']}"
    if len(pairs) == 1:
        return f"{_in_words(_speedup(best))} at {at}"
    speedups = [_speedup(p) for p in pairs]
    batches = _span([p[1]["batch_size"] for p in pairs])
    lengths = _span([p[1]["seq_len"] for p in pairs])
    return (
        f"{min(speedups):.2f}–{max(speedups):.2f}× over {len(pairs)} scenarios (batch {batches}, "
        f"seq {lengths}); best {_in_words(_speedup(best))} at {at}"
    )


def _is(name: str, fam: str, **options: object) -> bool:
    return family(name) == fam and all(option(name, key) == value for key, value in options.items())


FIGURES: tuple[PaperFigure, ...] = (
    PaperFigure(
        "Adapter training step vs full fine-tuning",
        f"up to {ADAPTER_TRAINING_SPEEDUP - 1:.0%} faster (BERT-base, GPU; Pfeiffer a bit faster than "
        "Houlsby)",
        ADAPTER_TRAINING_SOURCE,
        "train",
        reference=lambda v: v == "full",
        subject=lambda v: v == "adapter",
        needs="`full` and `adapter` training steps in one group",
    ),
    PaperFigure(
        "Adapter inference vs full model",
        f"4–6% slower ({ADAPTER_INFERENCE_RELATIVE_SPEED[0]:.0%}–{ADAPTER_INFERENCE_RELATIVE_SPEED[1]:.0%} "
        "of the speed), depending on input size",
        ADAPTER_INFERENCE_SOURCE,
        "infer",
        reference=lambda v: v == "full",
        subject=lambda v: v == "adapter",
        needs="`full` and `adapter` inference in one group",
    ),
    PaperFigure(
        "Parallel multi-task inference, 5 dropped layers vs none",
        f"{PARALLEL_K5_SPEEDUP_RANGE[0] - 1:.0%}–{PARALLEL_K5_SPEEDUP_RANGE[1] - 1:.0%} faster for "
        f"2–16 tasks; {PARALLEL_K5_SPEEDUP_8_TASKS - 1:.0%} faster for 8 tasks",
        PARALLEL_SOURCE,
        "infer",
        reference=lambda v: _is(v, "parallel", n=0),
        subject=lambda v: _is(v, "parallel", n=PARALLEL_DROPPED),
        needs="`parallel:tasks=N` and `parallel:tasks=N,n=5` in one group",
        per_task_count=True,
    ),
    PaperFigure(
        "Robust AdapterDrop training step vs adapter training",
        "26% faster training steps (5 layers dropped)",
        "§3",
        "train",
        reference=lambda v: v == "adapter",
        subject=lambda v: _is(v, "adapterdrop", robust=True),
        needs="`adapter` and `adapterdrop:robust` training steps in one group",
    ),
    PaperFigure(
        "AdapterFusion over 8 adapters vs full model (inference)",
        "62% slower inference (training 47% slower)",
        "§4, Table 3",
        "infer",
        reference=lambda v: v == "full",
        subject=lambda v: _is(v, "fusion", adapters=8, keep=None, n=0),
        needs="`full` and `fusion:adapters=8` inference in one group",
    ),
    PaperFigure(
        "Pruned AdapterFusion: keep 2 of 8 adapters vs all 8 (inference)",
        "68% faster inference, comparable task performance",
        "§5.2",
        "infer",
        reference=lambda v: _is(v, "fusion", adapters=8, keep=None, n=0),
        subject=lambda v: _is(v, "fusion", adapters=8, keep=2, n=0),
        needs="`fusion:adapters=8` and `fusion:adapters=8,keep=2` inference in one group",
    ),
)
