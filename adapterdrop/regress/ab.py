"""``adapterdrop regress --against REV``: absolute step times of a revision (A) and the working tree (B).

A ratio cannot see a slowdown that hits every variant alike (a slower shared layer runner, a torch
upgrade): the variant and its baseline slow down together. This compares absolute times instead, in the
same job, which is the only way to compare them fairly on a shared machine:

1. REV is checked out into a temporary git worktree (removed afterwards);
2. processes alternate between the two trees, pairs in flipped order (A B, B A, A B, ...), so a drift of
   the machine over the job favours neither side; each process imports its own tree's ``adapterdrop``
   (``PYTHONPATH``) and measures every scenario of the preset (:mod:`adapterdrop.regress.ab_worker`).
   ``ADAPTERDROP_PLANT`` is passed to the working tree's processes only: a planted defect stands for an
   uncommitted change;
3. per scenario, one number per process (the median of its samples), so the samples of one process, which
   share its memory layout and warm state, count once; B regresses when the exact one-sided Mann-Whitney U
   test gives p < ``alpha`` / scenarios (Bonferroni: the family of scenarios keeps a false-alarm rate
   below ``alpha``) *and* median(B) / median(A) - 1 exceeds the minimum effect, derived from the same job's
   noise: :data:`SAFETY` times the larger relative inter-quartile range (IQR / median) of A's and of B's
   process numbers (quartiles, not the range, so that one process hit by a neighbour's burst does not
   blind the test).

A torch or transformers upgrade: run the two sides from two environments by pointing ``--python-a`` at
the other environment's interpreter (the revision can then be the working tree itself: ``--against HEAD``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapterdrop.errors import AdapterDropError
from adapterdrop.regress.checks import TIME_CHECK, Row
from adapterdrop.regress.rules import ShiftRule
from adapterdrop.regress.stats import smallest_p
from adapterdrop.testing_plant import ENV as PLANT_ENV

WORKER = Path(__file__).with_name("ab_worker.py")
#: family-wise false-alarm level of the A/B test (split over the scenarios, Bonferroni)
ALPHA = 0.05
#: minimum effect = SAFETY x the larger relative IQR of either side's per-process numbers
SAFETY = 2.0

Log = Callable[[str], None]


class AgainstError(AdapterDropError):
    """A revision that cannot be checked out or measured (message is one line)."""


@dataclass(frozen=True)
class ABSettings:
    """How the A/B comparison measures: processes per side, samples per process, timing of a sample."""

    processes: int = 6
    samples: int = 3
    min_sample_time_s: float = 0.05
    warmup_steps: int = 2
    alpha: float = ALPHA
    python_a: str = sys.executable
    python_b: str = sys.executable


@dataclass
class ABResult:
    """The rows (one per scenario), notes, and every process's numbers per scenario key and side."""

    rows: list[Row]
    notes: list[str]
    numbers: dict[str, dict[str, list[float]]]
    revision: str


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True)
    except FileNotFoundError:
        raise AgainstError("--against needs git on PATH") from None
    except subprocess.CalledProcessError as exc:
        message = (exc.stderr or exc.stdout or "").strip().splitlines()
        raise AgainstError(f"git {args[0]}: {message[-1] if message else 'failed'}") from None
    return done.stdout.strip()


def repository_root() -> Path:
    """The git checkout this ``adapterdrop`` was imported from (the working tree, side B)."""
    here = Path(__file__).resolve().parent
    try:
        return Path(_git(here, "rev-parse", "--show-toplevel"))
    except AgainstError:
        raise AgainstError(f"--against needs a git checkout; {here} is not in one") from None


@contextlib.contextmanager
def worktree(root: Path, revision: str) -> Iterator[tuple[Path, str]]:
    """``revision`` checked out (detached) into a temporary worktree; yields (path, commit); removed after."""
    commit = _git(root, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    folder = Path(tempfile.mkdtemp(prefix="adapterdrop-against-"))
    _git(root, "worktree", "add", "--detach", "--force", str(folder), commit)
    try:
        yield folder, commit
    finally:
        with contextlib.suppress(AgainstError):
            _git(root, "worktree", "remove", "--force", str(folder))
        with contextlib.suppress(AgainstError):
            _git(root, "worktree", "prune")


def _side_env(tree: Path, keep_plant: bool) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if keep_plant or name != PLANT_ENV}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tree), os.environ.get("PYTHONPATH", "")) if p)
    return env


def _run_side(python: str, tree: Path, spec_path: Path, keep_plant: bool) -> dict[str, Any]:
    done = subprocess.run(
        [python, str(WORKER), str(spec_path)],
        cwd=tree,
        env=_side_env(tree, keep_plant),
        capture_output=True,
        text=True,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        error = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise AgainstError(f"measuring {tree} failed: {error}")
    result = json.loads(lines[-1])
    imported = Path(result["adapterdrop"]).resolve()
    if tree.resolve() not in imported.parents:
        raise AgainstError(f"the process for {tree} imported adapterdrop from {imported}")
    return result["seconds"]


def worker_spec(scenarios: Sequence[Any], settings: ABSettings) -> dict[str, Any]:
    """The JSON a worker reads: the scenarios (fields + key) and how to time them."""
    return {
        "threads": scenarios[0].threads,
        "warmup_steps": settings.warmup_steps,
        "min_sample_time_s": settings.min_sample_time_s,
        "samples": settings.samples,
        "scenarios": [{**dataclasses.asdict(s), "key": s.key} for s in scenarios],
    }


def spread(values: Sequence[float]) -> float:
    """Inter-quartile range / median of positive numbers (inclusive quartiles; 0 for one number)."""
    if len(values) < 2:
        return 0.0
    low, median, high = statistics.quantiles(values, n=4, method="inclusive")
    return (high - low) / median


def compare_sides(
    labels: dict[str, str], numbers: dict[str, dict[str, list[float]]], alpha: float
) -> list[Row]:
    """One row per scenario: A's and B's per-process numbers under :class:`ShiftRule` (see module doc)."""
    level = alpha / max(1, len(numbers))
    rows = []
    for key, sides in numbers.items():
        a, b = sides["A"], sides["B"]
        min_effect = SAFETY * max(spread(a), spread(b))
        outcome = ShiftRule(level, min_effect).compare(a, b)
        rows.append(
            Row(
                labels[key],
                TIME_CHECK,
                outcome.verdict,
                statistics.median(a),
                statistics.median(b),
                outcome.change,
                [min(a), max(a)],
                [min(b), max(b)],
                f"{outcome.detail}; minimum effect {min_effect:.1%}",
                key,
            )
        )
    return rows


def run_against(
    revision: str, scenarios: Sequence[Any], labels: dict[str, str], settings: ABSettings, log: Log
) -> ABResult:
    """Measure ``scenarios`` in alternating processes of ``revision`` (A) and the working tree (B)."""
    root = repository_root()
    numbers: dict[str, dict[str, list[float]]] = {s.key: {"A": [], "B": []} for s in scenarios}
    with worktree(root, revision) as (tree_a, commit), tempfile.TemporaryDirectory() as folder:
        spec_path = Path(folder) / "spec.json"
        spec_path.write_text(json.dumps(worker_spec(scenarios, settings)))
        sides = {"A": (settings.python_a, tree_a, False), "B": (settings.python_b, root, True)}
        for pair in range(settings.processes):
            for side in "AB" if pair % 2 == 0 else "BA":
                log(f"process {pair + 1}/{settings.processes} of side {side}")
                python, tree, keep_plant = sides[side]
                for key, seconds in _run_side(python, tree, spec_path, keep_plant).items():
                    numbers[key][side].append(statistics.median(seconds))
    notes = [
        f"A = {revision} ({commit[:12]}), B = the working tree {root}; {settings.processes} processes per "
        f"side, one number per process (median of {settings.samples} samples)",
        f"exact one-sided Mann-Whitney U, p < {settings.alpha} / {len(numbers)} scenarios (smallest "
        f"possible p with {settings.processes} + {settings.processes}: "
        f"{smallest_p(settings.processes, settings.processes):.4f})",
    ]
    return ABResult(compare_sides(labels, numbers, settings.alpha), notes, numbers, commit)
