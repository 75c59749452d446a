"""Intervals of statistics of several paired series: the same percentile bootstrap over rounds as
:func:`adapterdrop.measure.stats.paired_speedup_interval`, for any function of the series' medians.

Series are paired by round (round r of each was taken in the same rotation, see
:mod:`adapterdrop.distributed.timing`); a resample draws rounds with replacement and takes every series'
median over the drawn rounds, so drift in the machine hits all series of a round alike. The same input
and seed always give the same interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from adapterdrop.measure.stats import BOOTSTRAP_RESAMPLES, CONFIDENCE, MIN_ROUNDS_FOR_INTERVAL


def paired_interval(
    statistic: Callable[..., np.ndarray],
    series: Sequence[Sequence[float]],
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float] | None:
    """The ``confidence`` interval of ``statistic(median_1, median_2, ...)`` (vectorised over resamples)
    over rounds drawn with replacement; None with fewer than ``MIN_ROUNDS_FOR_INTERVAL`` rounds."""
    rounds = min(len(s) for s in series)
    if rounds < MIN_ROUNDS_FOR_INTERVAL:
        return None
    picks = np.random.default_rng(seed).integers(0, rounds, size=(BOOTSTRAP_RESAMPLES, rounds))
    medians = [np.median(np.asarray(s[:rounds], dtype=float)[picks], axis=1) for s in series]
    values = statistic(*medians)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def exposed(step: np.ndarray | float, silent: np.ndarray | float) -> np.ndarray | float:
    """Seconds a step waits for communication: the step's median minus the silent step's."""
    return step - silent


def overlap(step: np.ndarray | float, silent: np.ndarray | float, comm: np.ndarray | float) -> np.ndarray:
    """The share of the communication hidden behind backward: ``1 - exposed / comm``, clipped to [0, 1]
    (noise can push the raw value past either end; no communication time counts as nothing hidden)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        share = 1.0 - (np.asarray(step) - np.asarray(silent)) / np.asarray(comm)
    return np.clip(np.nan_to_num(share, nan=0.0, posinf=0.0, neginf=0.0), 0.0, 1.0)
