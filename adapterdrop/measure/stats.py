"""Statistics of interleaved samples: the speedup's confidence interval, and when a record is noisy.

Rounds are paired in time: round r holds one sample of the baseline and one of the variant, taken back to
back (:func:`adapterdrop.measure.timing.interleave`). A drift in the machine's state hits both samples of a
round alike, so resampling *rounds* (not samples independently) keeps that pairing. The speedup is the
ratio of the two medians (so a printed speedup can be recomputed from the medians printed beside it); its
interval is the percentile bootstrap of that same statistic over rounds drawn with replacement, with a
fixed seed, so the same samples always give the same interval.

With few rounds the bootstrap interval is too narrow rather than too wide (5 rounds have only 126
distinct resamples), which is why :data:`MIN_ROUNDS_FOR_INTERVAL` rounds are needed for an interval at
all and why a record is also noisy when its own spread is large.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: confidence level of every interval the toolkit stores
CONFIDENCE = 0.95
#: bootstrap resamples (enough that the 2.5% and 97.5% percentiles move by < 0.1% between seeds)
BOOTSTRAP_RESAMPLES = 4000
#: fewer rounds than this give no interval (the bootstrap of 1 or 2 pairs says nothing)
MIN_ROUNDS_FOR_INTERVAL = 3
#: torch.utils.benchmark's own threshold (``Measurement.meets_confidence``): IQR / median above it means
#: "significant environmental influence"
IQR_THRESHOLD = 0.1
#: a speedup whose 95% interval reaches further than this from the speedup (relative) is noisy
CI_HALF_WIDTH_THRESHOLD = 0.05


def ratio_of_medians(baseline: Sequence[float], variant: Sequence[float]) -> float:
    """median(baseline) / median(variant): the speedup of the variant when samples are times."""
    return statistics.median(baseline) / statistics.median(variant)


def paired_speedup_interval(
    baseline: Sequence[float], variant: Sequence[float], confidence: float = CONFIDENCE, seed: int = 0
) -> tuple[float, float] | None:
    """Percentile-bootstrap interval of ``median(baseline) / median(variant)`` over paired rounds.

    ``baseline[r]`` and ``variant[r]`` are the samples of round r. Returns None with fewer than
    :data:`MIN_ROUNDS_FOR_INTERVAL` rounds. The same input and seed always give the same interval.
    """
    rounds = min(len(baseline), len(variant))
    if rounds < MIN_ROUNDS_FOR_INTERVAL:
        return None
    base = np.asarray(baseline[:rounds], dtype=float)
    var = np.asarray(variant[:rounds], dtype=float)
    picks = np.random.default_rng(seed).integers(0, rounds, size=(BOOTSTRAP_RESAMPLES, rounds))
    ratios = np.median(base[picks], axis=1) / np.median(var[picks], axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(low), float(high)


def relative_half_width(value: float, interval: tuple[float, float]) -> float:
    """How far the interval reaches from ``value``, relative to it: max(value - low, high - value) / value."""
    low, high = interval
    return max(value - low, high - value) / value


@dataclass(frozen=True)
class NoiseRule:
    """When a record is called noisy, and why (each reason is one line a reader understands)."""

    iqr_threshold: float = IQR_THRESHOLD
    ci_half_width_threshold: float = CI_HALF_WIDTH_THRESHOLD

    def sample_reasons(self, label: str, samples: Sequence[float]) -> list[str]:
        """A reason when the samples' IQR exceeds ``iqr_threshold`` of their median."""
        if len(samples) < 2:
            return []
        q1, median, q3 = statistics.quantiles(samples, n=4, method="inclusive")
        spread = (q3 - q1) / median
        if spread <= self.iqr_threshold:
            return []
        return [f"{label} IQR is {spread:.0%} of its median (> {self.iqr_threshold:.0%})"]

    def interval_reasons(
        self, speedup: float, interval: tuple[float, float] | None, rounds: int
    ) -> list[str]:
        """A reason when the speedup has no interval or its interval is wider than allowed."""
        if interval is None:
            return [f"{rounds} round(s): too few for an interval (need {MIN_ROUNDS_FOR_INTERVAL})"]
        width = relative_half_width(speedup, interval)
        if width <= self.ci_half_width_threshold:
            return []
        limit = self.ci_half_width_threshold
        return [f"speedup 95% interval reaches {width:.1%} from the speedup (> {limit:.0%})"]
