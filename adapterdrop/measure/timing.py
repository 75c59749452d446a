"""Interleaved timing with ``torch.utils.benchmark``: warm-up, calibration, rounds, median and IQR.

Every sample is ``Timer(...).timeit(number)`` with ``num_threads`` fixed: the Timer sets the thread count,
runs ``max(number // 100, 2)`` untimed calls first (which re-warms caches after another variant ran) and
synchronises the accelerator before reading the clock. A sample is the mean seconds per call over
``number`` calls; ``number`` is calibrated once per callable so that a sample lasts at least
``min_sample_time_s``. Rounds rotate the order (A B C, B C A, C A B, ...) so that drift in the machine
(thermal state, other load) hits every callable alike.
"""

from __future__ import annotations

import contextlib
import math
import statistics
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import torch
from torch.utils.benchmark import Timer

from adapterdrop.errors import AdapterDropError


@dataclass(frozen=True)
class TimingConfig:
    """How long and how often to time each callable of a group."""

    rounds: int = field(default=7, metadata={"help": "interleaved rounds; one sample per callable per round"})
    min_sample_time_s: float = field(default=0.1, metadata={"help": "seconds a sample lasts at least"})
    warmup_steps: int = field(default=2, metadata={"help": "untimed calls before calibration"})

    def __post_init__(self) -> None:
        if not _is_int(self.rounds) or self.rounds < 1:
            raise AdapterDropError(f"timing rounds must be a positive integer, got {self.rounds!r}")
        if not _is_int(self.warmup_steps) or self.warmup_steps < 0:
            raise AdapterDropError(f"warmup_steps must be a non-negative integer, got {self.warmup_steps!r}")
        if isinstance(self.min_sample_time_s, bool) or not (
            isinstance(self.min_sample_time_s, int | float) and self.min_sample_time_s > 0
        ):
            raise AdapterDropError(f"min_sample_time_s must be positive, got {self.min_sample_time_s!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _timer(fn: Callable[[], object], num_threads: int) -> Timer:
    return Timer(stmt="fn()", globals={"fn": fn}, num_threads=num_threads)


def calibrate(fn: Callable[[], object], num_threads: int, min_sample_time_s: float) -> int:
    """Calls per sample so that one sample lasts at least ``min_sample_time_s`` seconds."""
    seconds = _timer(fn, num_threads).timeit(1).mean
    return max(1, math.ceil(min_sample_time_s / seconds))


def sample(fn: Callable[[], object], num_threads: int, number: int) -> float:
    """Mean seconds per call of ``fn`` over ``number`` calls (one timed sample)."""
    return _timer(fn, num_threads).timeit(number).mean


def rotations(names: list[str], rounds: int) -> list[list[str]]:
    """The order of each round: round r starts at ``names[r % len(names)]``."""
    if not names:
        return []
    return [names[r % len(names) :] + names[: r % len(names)] for r in range(rounds)]


def interleave(
    fns: Mapping[str, Callable[[], object]],
    numbers: Mapping[str, int],
    num_threads: int,
    rounds: int,
    on_error: Callable[[str, BaseException], None],
) -> dict[str, list[float]]:
    """Samples (seconds per call) of every callable, interleaved over ``rounds`` rotated rounds.

    A callable that raises is reported through ``on_error(name, exc)`` and dropped from later rounds.
    """
    samples: dict[str, list[float]] = {name: [] for name in fns}
    failed: set[str] = set()
    for order in rotations(list(fns), rounds):
        for name in order:
            if name in failed:
                continue
            try:
                samples[name].append(sample(fns[name], num_threads, numbers[name]))
            except Exception as exc:  # recorded as the variant's status; the others go on
                failed.add(name)
                on_error(name, exc)
    return {name: values for name, values in samples.items() if name not in failed}


def median_iqr(samples: list[float]) -> tuple[float, float]:
    """Median and inter-quartile range (seconds) of ``samples``; the IQR of fewer than 2 samples is 0."""
    median = statistics.median(samples)
    if len(samples) < 2:
        return median, 0.0
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return median, q3 - q1


@contextlib.contextmanager
def fixed_threads(num_threads: int) -> Iterator[None]:
    """Set torch's intra-op threads for the untimed passes (warm-up, FLOPs, memory); restore after."""
    before = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
