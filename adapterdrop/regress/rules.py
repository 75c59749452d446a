"""The comparison rules of the regression gate, each a small object with one ``compare`` method.

Like pytest-benchmark's ``RegressionCheck`` (a field and a threshold, ``fails(current, compared)``), a rule
holds its threshold and turns a baseline figure and a figure measured now into an :class:`Outcome`:

- :class:`ExactRule`: a deterministic figure (FLOPs, parameter counts, parameter / gradient / optimizer
  bytes) must equal the baseline's exactly. Tolerance zero: these figures are counted, not timed (FLOPs
  from ``FlopCounterMode`` as integers, robust AdapterDrop's exact expectation over its draws computed the
  same way each time, bytes from tensor sizes), so any difference is a change in what runs;
- :class:`IntervalRule`: a within-run speedup (baseline median / variant median, with its 95% interval)
  regresses when its whole interval lies below the baseline's interval by more than a factor
  ``1 + min_effect``;
- :class:`ShiftRule`: absolute step times of the working tree (B) against a revision (A), one sample per
  process: a regression when an exact one-sided Mann-Whitney U test says B is slower at level ``alpha``
  *and* the medians differ by more than ``min_effect``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from adapterdrop.regress.stats import mann_whitney_greater, relative_change, u_statistic

OK = "ok"
IMPROVED = "improved"
REGRESSION = "regression"
CHANGED = "changed"
MISSING = "missing"
#: verdicts that fail the gate (exit status 1)
FAILING = frozenset({REGRESSION, CHANGED, MISSING})


@dataclass(frozen=True)
class Outcome:
    """A rule's verdict, the relative change now / baseline - 1 (None where undefined), and why."""

    verdict: str
    change: float | None
    detail: str = ""

    @property
    def fails(self) -> bool:
        return self.verdict in FAILING


@dataclass(frozen=True)
class ExactRule:
    """A deterministic figure must equal its baseline value exactly (tolerance 0: see the module doc)."""

    field: str

    def compare(self, baseline: float | None, now: float | None) -> Outcome:
        if now is None:
            return Outcome(MISSING, None, f"{self.field} was not measured")
        if baseline is None:
            return Outcome(CHANGED, None, f"{self.field} is new (the baseline has none)")
        if now == baseline:
            return Outcome(OK, 0.0)
        change = relative_change(baseline, now) if baseline else None
        return Outcome(CHANGED, change)


@dataclass(frozen=True)
class IntervalRule:
    """A speedup regresses when ``now_high * (1 + min_effect) < baseline_low``: its whole 95% interval lies
    below the baseline's by more than the minimum effect, as a factor (so a ratio can be seen to halve with
    any ``min_effect``); it improved when ``now_low > baseline_high * (1 + min_effect)``. ``change``
    compares the point estimates."""

    min_effect: float

    def compare(
        self, baseline: float, baseline_ci: Sequence[float], now: float | None, now_ci: Sequence[float] | None
    ) -> Outcome:
        if now is None or not now_ci:
            return Outcome(MISSING, None, "no speedup with an interval was measured")
        change = relative_change(baseline, now)
        factor = 1 + self.min_effect
        if now_ci[1] * factor < baseline_ci[0]:
            return Outcome(
                REGRESSION,
                change,
                f"interval top {now_ci[1]:.3f} x {factor:.3f} < baseline interval low {baseline_ci[0]:.3f}",
            )
        if now_ci[0] > baseline_ci[1] * factor:
            return Outcome(
                IMPROVED,
                change,
                f"interval low {now_ci[0]:.3f} > baseline interval top {baseline_ci[1]:.3f} x {factor:.3f}",
            )
        return Outcome(OK, change)


@dataclass(frozen=True)
class ShiftRule:
    """Times B regress against times A when ``mann_whitney_greater(A, B) < alpha`` and
    ``median(B) / median(A) - 1 > min_effect``; B is faster under the mirrored conditions."""

    alpha: float
    min_effect: float

    def compare(self, a: Sequence[float], b: Sequence[float]) -> Outcome:
        if not a or not b:
            return Outcome(MISSING, None, "a side has no samples")
        change = relative_change(statistics.median(a), statistics.median(b))
        slower = mann_whitney_greater(a, b)
        faster = mann_whitney_greater(b, a)
        u = f"U = {u_statistic(a, b):g} of {len(a) * len(b)}"
        if slower < self.alpha and change > self.min_effect:
            return Outcome(
                REGRESSION, change, f"{u}, p = {slower:.4f} < {self.alpha:.4f} (one-sided, B slower)"
            )
        if faster < self.alpha and -change > self.min_effect:
            return Outcome(
                IMPROVED, change, f"{u}, p = {faster:.4f} < {self.alpha:.4f} (one-sided, B faster)"
            )
        return Outcome(OK, change, f"{u}, p = {slower:.4f} (one-sided, B slower; level {self.alpha:.4f})")
