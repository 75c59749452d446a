"""Interleaved timing kept in ``torch.utils.benchmark``'s types: warm-up, calibration, rounds, median, IQR.

Every sample runs ``number`` calls of a callable with ``num_threads`` fixed, reads ``time.perf_counter``
around them and synchronises the accelerator before each reading; it is kept as torch's ``Measurement`` (with
a ``TaskSpec``), whose mean is seconds per call. Every call inside a sample is timed. Before it, and
outside the timed window, ``TimingConfig.sample_warmup_steps`` untimed steps of the same variant run
(default one): interleaving evicts, and the first call after another variant's sample runs cold; in one
interleaved run on bert-small, cold samples lowered short steps' speedups by 4-5% (docs/measurement.md,
"Duty cycle"). It is one *step*, not one call: a stochastic variant's timed call is a cycle of many steps.
(``torch.utils.benchmark.Timer.timeit(number)``, used before, ran ``max(number // 100, 2)`` untimed calls
of the timed callable before each sample, a whole cycle each for a stochastic variant, plus three more calls
to calibrate.) ``number`` is calibrated once per callable, from the seconds of the warm-up steps the caller
already ran (:func:`calls_per_sample`), so that a sample lasts at least ``min_sample_time_s``. Rounds rotate
the order (A B C, B C A, C A B, ...) so that drift in the machine (thermal state, other load) hits every
callable alike, and the samples of one round are taken back to back: they are *paired*, which is what the
speedup's interval resamples (:mod:`adapterdrop.measure.stats`).

The samples of a callable are kept as torch's own ``Measurement`` (merged over rounds), so its median, IQR and
``meets_confidence`` are torch's. After the first ``rounds`` rounds, more rounds are added while the caller
says the result is not yet precise enough, up to ``max_rounds`` and ``time_budget_s``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import torch
from torch.utils.benchmark import Measurement
from torch.utils.benchmark.utils.common import TaskSpec, set_torch_threads

from adapterdrop.errors import AdapterDropError


@dataclass(frozen=True)
class TimingConfig:
    """How long and how often to time each callable of a group."""

    rounds: int = field(default=7, metadata={"help": "interleaved rounds; one sample per callable per round"})
    min_sample_time_s: float = field(default=0.1, metadata={"help": "seconds a sample lasts at least"})
    warmup_steps: int = field(
        default=2, metadata={"help": "untimed steps per variant before timing; the last ones calibrate"}
    )
    sample_warmup_steps: int = field(
        default=1,
        metadata={
            "help": "untimed steps of a variant right before each of its samples (they re-warm what the "
            "previous variant's sample evicted; docs/measurement.md measures what a cold sample costs)"
        },
    )
    max_rounds: int | None = field(
        default=None,
        metadata={"help": "add rounds up to this many while a speedup interval is wider than ci_target"},
    )
    ci_target: float = field(
        default=0.02, metadata={"help": "stop adding rounds once every speedup's 95% interval is this tight"}
    )
    time_budget_s: float = field(
        default=120.0, metadata={"help": "no round starts after this many seconds of a group's timing"}
    )

    def __post_init__(self) -> None:
        if not _is_int(self.rounds) or self.rounds < 1:
            raise AdapterDropError(f"timing rounds must be a positive integer, got {self.rounds!r}")
        for name in ("warmup_steps", "sample_warmup_steps"):
            value = getattr(self, name)
            if not _is_int(value) or value < 0:
                raise AdapterDropError(f"{name} must be a non-negative integer, got {value!r}")
        if self.max_rounds is not None and (not _is_int(self.max_rounds) or self.max_rounds < self.rounds):
            raise AdapterDropError(f"max_rounds must be an integer >= rounds, got {self.max_rounds!r}")
        for name in ("min_sample_time_s", "ci_target", "time_budget_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, int | float) and value > 0):
                raise AdapterDropError(f"{name} must be positive, got {value!r}")

    @property
    def round_limit(self) -> int:
        """The most rounds a group may take (``max_rounds``, or ``rounds`` when it is not set)."""
        return self.max_rounds or self.rounds


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _synchronize() -> None:
    """Wait for the accelerator's queued work (a no-op on the CPU, and before CUDA is first used)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def timed_call(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes, the accelerator synchronised before and after."""
    _synchronize()
    start = time.perf_counter()
    fn()
    _synchronize()
    return time.perf_counter() - start


def calls_per_sample(seconds_per_call: float, min_sample_time_s: float) -> int:
    """Calls per sample so that a sample of calls lasting ``seconds_per_call`` each lasts at least
    ``min_sample_time_s`` seconds."""
    return max(1, math.ceil(min_sample_time_s / max(seconds_per_call, 1e-9)))


def calibrate(fn: Callable[[], object], num_threads: int, min_sample_time_s: float) -> int:
    """Calls per sample from one timed call of ``fn`` (for callers with no warm-up seconds of their own)."""
    with set_torch_threads(num_threads):
        seconds = timed_call(fn)
    return calls_per_sample(seconds, min_sample_time_s)


def sample(
    fn: Callable[[], object],
    num_threads: int,
    number: int,
    label: str = "step",
    warmup_calls: int = 0,
    warm: Callable[[], object] | None = None,
) -> Measurement:
    """One timed sample: ``number`` calls of ``fn`` as torch's ``Measurement`` (mean: seconds per call),
    after ``warmup_calls`` untimed calls of ``warm`` (default ``fn``)."""

    def calls() -> None:
        for _ in range(number):
            fn()

    with set_torch_threads(num_threads):
        for _ in range(warmup_calls):
            (warm or fn)()
        seconds = timed_call(calls)
    spec = TaskSpec(stmt="fn()", setup="pass", num_threads=num_threads, description=label)
    return Measurement(number, [max(seconds, 1e-9)], spec)


def rotations(names: list[str], rounds: int) -> list[list[str]]:
    """The order of each round: round r starts at ``names[r % len(names)]``."""
    if not names:
        return []
    return [names[r % len(names) :] + names[: r % len(names)] for r in range(rounds)]


def interleave(
    fns: Mapping[str, Callable[[], object]],
    numbers: Mapping[str, int],
    num_threads: int,
    config: TimingConfig,
    on_error: Callable[[str, BaseException], None],
    more: Callable[[dict[str, list[float]]], bool] | None = None,
    steps: Mapping[str, int] | None = None,
    warm: Mapping[str, Callable[[], object]] | None = None,
) -> dict[str, Measurement]:
    """Every callable timed in interleaved, rotated rounds; one merged ``Measurement`` per callable.

    ``steps[name]`` (default 1) is how many steps one call of ``fns[name]`` runs (a cycle over the draws of
    a stochastic variant): its ``Measurement`` counts ``number * steps`` steps per sample, so every time it
    gives is seconds per step. ``config.rounds`` rounds always run; then, while ``more(samples)`` is true
    (``samples``: seconds per step of every callable, one per round), rounds are added up to
    ``config.round_limit`` rounds and ``config.time_budget_s`` seconds. Before each sample of ``fns[name]``,
    ``config.sample_warmup_steps`` untimed calls of ``warm[name]`` run (one step of the variant, where a call
    of ``fns[name]`` is a cycle of several; default ``fns[name]``). A callable that raises is reported
    through ``on_error(name, exc)`` and dropped from later rounds.
    """
    measured: dict[str, list[Measurement]] = {name: [] for name in fns}
    failed: set[str] = set()
    started = time.perf_counter()
    for index, order in enumerate(rotations(list(fns), config.round_limit)):
        if index >= config.rounds:
            elapsed = time.perf_counter() - started
            samples = {name: [m.mean for m in ms] for name, ms in measured.items() if name not in failed}
            if more is None or elapsed > config.time_budget_s or not more(samples):
                break
        for name in order:
            if name in failed:
                continue
            try:
                rewarm = config.sample_warmup_steps
                taken = sample(fns[name], num_threads, numbers[name], name, rewarm, (warm or {}).get(name))
                per_step = taken.number_per_run * (steps or {}).get(name, 1)
                measured[name].append(Measurement(per_step, taken.raw_times, taken.task_spec, taken.metadata))
            except Exception as exc:  # recorded as the variant's status; the others go on
                failed.add(name)
                on_error(name, exc)
    return {name: Measurement.merge(ms)[0] for name, ms in measured.items() if name not in failed and ms}


def per_round(measurement: Measurement) -> list[float]:
    """Seconds per step of each round's sample, in round order (``Measurement.times``)."""
    return list(measurement.times)


@contextlib.contextmanager
def fixed_threads(num_threads: int) -> Iterator[None]:
    """Set torch's intra-op threads for the untimed passes (warm-up, FLOPs, memory); restore after."""
    before = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
