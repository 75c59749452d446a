"""The AdapterDrop paper's published efficiency figures, each with its source, and the measured counterpart.

Rücklé et al., *AdapterDrop: On the Efficiency of Adapters in Transformers*, EMNLP 2021 (arXiv 2010.11918).
The figures are quoted from the paper's text (see /work/shared/PAPER.md of the project); they are never
mixed with measurements: the report shows them in their own column, labelled as the paper's. A measured
counterpart is the ratio of two variants' median times *in one run* (same process, same input, interleaved
rounds), i.e. the speedup of the subject over the reference, quoted with its 95% interval and the two
medians; a noisy or loaded measurement is not quoted as a result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from adapterdrop.report.format import interval, ms, times
from adapterdrop.report.names import family, option
from adapterdrop.report.ratios import Ratio, ratio
from adapterdrop.report.records import ReportRecord, group_by

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

    def ratios(self, records: list[ReportRecord]) -> list[Ratio]:
        """(reference, subject) speedups measured in one run of one series, any verdict."""
        return _ratios(records, self.phase, self.reference, self.subject)

    def findings(self, records: list[ReportRecord]) -> list[Finding]:
        """The measured counterpart per series (and per task count for a per-task figure), any verdict;
        empty when the records do not hold it."""
        found = []
        for (series,), members in group_by(self.ratios(records), lambda p: p.subject.series).items():
            if self.per_task_count:
                by_tasks = group_by(members, lambda p: option(p.subject.variant, "tasks"))
                found += [Finding(series, tasks, ratios) for (tasks,), ratios in by_tasks.items()]
            else:
                found.append(Finding(series, None, members))
        return found

    def measured(self, records: list[ReportRecord]) -> str | None:
        """The measured counterpart in words (per series), or None when the records do not hold it.

        Only results are quoted, each with the two medians it is the ratio of; noisy or loaded
        measurements are counted and not stated.
        """
        findings = self.findings(records)
        if not findings:
            return None
        lines = []
        for (series,), members in group_by(findings, "series").items():
            prefix = f"[{series}] " if series else ""
            if self.per_task_count:
                lines.append(prefix + "; ".join(f"N={f.tasks}: {_summary(f)}" for f in members))
            else:
                lines.append(prefix + _summary(members[0]))
        return "<br>".join(lines)


@dataclass(frozen=True)
class Finding:
    """A figure's measured ratios in one series and, for a per-task-count figure, one task count
    (``tasks``, else None): results and noisy or loaded ones alike."""

    series: str
    tasks: object | None
    ratios: list[Ratio]

    @property
    def results(self) -> list[Ratio]:
        """The ratios that are results, lowest first."""
        return sorted((f for f in self.ratios if f.is_result), key=lambda f: f.value)

    @property
    def doubtful(self) -> list[Ratio]:
        """The ratios that are not results (noisy or loaded)."""
        return [f for f in self.ratios if not f.is_result]


def _ratios(
    records: list[ReportRecord], phase: str, reference: Callable[[str], bool], subject: Callable[[str], bool]
) -> list[Ratio]:
    measured = [r for r in records if r.measured and r.phase == phase]
    found = []
    for members in group_by(measured, "series", "run_id").values():
        for ref in (r for r in members if reference(r.variant)):
            found.extend(ratio(ref, sub) for sub in members if subject(sub.variant) and sub is not ref)
    return found


def in_words(speedup: float) -> str:
    """A speedup as the paper words it: ``1.4`` -> ``40% faster``, ``0.94`` -> ``94% of the speed``."""
    if speedup >= 1:
        return f"{speedup - 1:.0%} faster"
    return f"{speedup:.0%} of the speed"


def _span(values: list[int]) -> str:
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}–{high}"


def quote(found: Ratio) -> str:
    """One ratio with its interval and the two medians it is made of, and where it was measured."""
    ref, sub = found.reference, found.subject
    return (
        f"{times(found.value)} {interval(found.interval, sub.schema)} "
        f"(`{ref.variant}` {ms(ref.time_median_s)} ms / `{sub.variant}` {ms(sub.time_median_s)} ms; "
        f"{in_words(found.value)}) at batch {sub.batch_size}, seq {sub.seq_len}"
    )


def _summary(finding: Finding) -> str:
    """The results of ``finding``: the value for one scenario, else the range with its two ends quoted;
    then how many measurements are not stated (noisy or loaded)."""
    results = finding.results
    doubtful = len(finding.doubtful)
    if not results:
        return f"not stated: {doubtful} scenario(s) measured, all noisy or loaded (see the tables)"
    if len(results) == 1:
        text = quote(results[0])
    else:
        batches = _span([f.subject.batch_size for f in results])
        lengths = _span([f.subject.seq_len for f in results])
        text = (
            f"{len(results)} scenarios (batch {batches}, seq {lengths}): lowest {quote(results[0])}; "
            f"highest {quote(results[-1])}"
        )
    if doubtful:
        text += f"; {doubtful} more not stated (noisy or loaded)"
    return text


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
