"""Timing under data parallelism: every rank runs the same callables in the same rotated rounds.

A callable belongs to one world size w (ranks 0..w-1 run it; the others wait). Each sample starts at a barrier
of all ranks; every member then takes one sample with :func:`adapterdrop.measure.timing.sample` (``number``
calls, threads fixed, the device synchronised, no untimed call inside) and the sample's seconds per step (per
call, divided by the steps a call runs: a cycle over a stochastic variant's draws) is the *slowest* member's,
since a data-parallel step ends when its last rank does. Calls per sample are calibrated by every member and
the largest count is used by all, so that the ranks run the same number of collective steps. Rounds rotate the
order as the single-process runner does (:func:`adapterdrop.measure.timing.rotations`), so the samples of one
round are paired in time across variants *and* world sizes: that pairing is what the intervals resample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from adapterdrop.distributed.team import Team
from adapterdrop.measure.timing import calibrate, rotations, sample


@dataclass(frozen=True)
class Timed:
    """A named callable of world size ``world_size``; ``fn`` is None on ranks outside it; one call runs
    ``steps`` steps (a cycle over a stochastic variant's draws), and its samples are seconds per step."""

    name: str
    world_size: int
    fn: Callable[[], object] | None
    steps: int = 1


def agree_number(team: Team, item: Timed, threads: int, min_sample_time_s: float) -> int:
    """Calls per sample, the same on every rank: the largest any member calibrated (a collective)."""
    team.barrier()
    own = calibrate(item.fn, threads, min_sample_time_s) if item.fn is not None else 0
    return max(1, int(team.max(own)))


def timed_rounds(
    team: Team,
    items: Sequence[Timed],
    numbers: dict[str, int],
    threads: int,
    rounds: int,
    after_round: Callable[[int], None] | None = None,
) -> dict[str, list[float]]:
    """Seconds per step of every item (per call / ``item.steps``), one sample per round (the slowest
    member's), rounds rotated; ``after_round(r)`` is called after round r (1-based), e.g. for progress."""
    by_name = {item.name: item for item in items}
    samples: dict[str, list[float]] = {name: [] for name in by_name}
    for index, order in enumerate(rotations(list(by_name), rounds), start=1):
        for name in order:
            item = by_name[name]
            team.barrier()
            own = sample(item.fn, threads, numbers[name], name).mean if item.fn is not None else 0.0
            samples[name].append(team.max(own) / item.steps)
        if after_round is not None:
            after_round(index)
    return samples
