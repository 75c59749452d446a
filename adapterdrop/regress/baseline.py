"""The stored baseline of the regression gate (``profiles/baselines/NAME.json``): build, save, load.

A baseline is made by measuring a preset ``repeats`` times on an untouched tree (``adapterdrop regress
--update``). Per scenario (keyed by the record's ``key``) it keeps

- ``deterministic``: the figures that do not vary between runs (:data:`DETERMINISTIC_FIELDS`), which must
  agree between the repeats (else the baseline is refused: something counted is not deterministic);
- ``speedup`` / ``speedup_ci``: the within-run speedup of the variant over its group's baseline, as the
  median of the repeats' speedups and the envelope of their 95% intervals [lowest low, highest high];
  ``runs`` keeps each repeat's speedup, interval and run id;

and for the whole file the environment of the first record, and the minimum effect size derived from the
repeats (:func:`derive_min_effect`).

The minimum effect is derived from measured noise: the largest *separation* between two repeats'
intervals of one speedup (0 when they overlap; else the gap relative to the lower interval's top, see
:func:`adapterdrop.regress.stats.separation`) says how far two runs of the same code have been seen to
disagree beyond their own intervals; the median relative half-width of the intervals says how fine one
run resolves. ``min_effect = SAFETY * max(largest separation, median half-width)``: the gate asks a new
run to lie beyond the baseline's envelope by twice the worst disagreement the repeats showed.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapterdrop.errors import AdapterDropError
from adapterdrop.regress.stats import separation
from adapterdrop.scenario import Record

BASELINE_SCHEMA = 1
#: figures that do not vary between runs; compared exactly (FLOPs: 2 per multiply-add; bytes)
DETERMINISTIC_FIELDS = (
    "flops_forward",
    "flops_step",
    "params_total",
    "params_trainable",
    "memory_params_bytes",
    "memory_grads_bytes",
    "memory_optimizer_bytes",
)
#: how many times the worst disagreement between repeats a run must exceed to count (see module docstring)
SAFETY = 2.0
#: fewest repeats from which a minimum effect is derived
MIN_REPEATS = 2


class BaselineError(AdapterDropError):
    """A baseline file that is missing, does not parse, or cannot be built (message is one line)."""


@dataclass
class ScenarioBaseline:
    """One scenario of a baseline: what it is, its deterministic figures, its speedup over its baseline."""

    key: str
    label: str
    scenario: dict[str, Any]
    deterministic: dict[str, float | int | None]
    speedup: float | None = None
    speedup_ci: list[float] | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Baseline:
    """A whole baseline file (see the module docstring)."""

    preset: str
    scenarios: list[ScenarioBaseline]
    min_effect: float
    noise: dict[str, Any]
    env: dict[str, Any]
    created_at: str = ""
    ab: dict[str, Any] | None = None
    schema: int = BASELINE_SCHEMA

    def by_key(self) -> dict[str, ScenarioBaseline]:
        return {entry.key: entry for entry in self.scenarios}


def scenario_label(record: Record) -> str:
    """``comparison/phase b=B s=S variant``: how the gate's table names a scenario."""
    return f"{record.comparison}/{record.phase} b={record.batch_size} s={record.seq_len} {record.variant}"


def _interval(record: Record) -> list[float] | None:
    if record.variant == record.baseline or record.speedup is None or not record.speedup_ci:
        return None
    return [float(v) for v in record.speedup_ci]


def derive_min_effect(intervals: Mapping[str, Sequence[tuple[float, Sequence[float]]]]) -> dict[str, Any]:
    """The minimum effect from repeats: per scenario key, each repeat's (speedup, [low, high]).

    Returns ``min_effect`` and the facts it came from (``max_separation`` and the scenario that showed it,
    ``median_half_width``, ``safety``, ``repeats``).
    """
    largest, where, widths = 0.0, None, []
    for key, runs in intervals.items():
        for speedup, (low, high) in runs:
            widths.append(max(speedup - low, high - speedup) / speedup)
        for i, (_, first) in enumerate(runs):
            for _, second in runs[i + 1 :]:
                gap = separation(first, second)
                if gap > largest:
                    largest, where = gap, key
    if not widths:
        raise BaselineError(
            "no speedup with an interval was measured: nothing to derive a minimum effect from"
        )
    half_width = statistics.median(widths)
    repeats = max(len(runs) for runs in intervals.values())
    return {
        "min_effect": SAFETY * max(largest, half_width),
        "max_separation": largest,
        "max_separation_key": where,
        "median_half_width": half_width,
        "safety": SAFETY,
        "repeats": repeats,
        "rule": "min_effect = safety * max(max_separation, median_half_width)",
    }


def build_baseline(preset: str, runs: Sequence[Sequence[Record]], created_at: str | None = None) -> Baseline:
    """A baseline from ``runs`` (each the records of one measurement of the whole preset, same keys)."""
    if len(runs) < MIN_REPEATS:
        raise BaselineError(f"a baseline needs at least {MIN_REPEATS} repeats to derive its noise")
    failed = [f"{r.variant}: {r.status}" for run in runs for r in run if r.status != "ok"]
    if failed:
        raise BaselineError(f"not every scenario was measured: {'; '.join(failed[:3])}")
    entries: dict[str, ScenarioBaseline] = {}
    repeats: dict[str, list[tuple[float, list[float]]]] = {}
    for run in runs:
        for record in run:
            figures = {name: getattr(record, name) for name in DETERMINISTIC_FIELDS}
            entry = entries.get(record.key)
            if entry is None:
                scenario = {name: value for name, value in asdict(record.scenario).items()}
                entry = entries[record.key] = ScenarioBaseline(
                    record.key, scenario_label(record), scenario, figures
                )
            elif entry.deterministic != figures:
                changed = [n for n in DETERMINISTIC_FIELDS if entry.deterministic[n] != figures[n]]
                raise BaselineError(f"{entry.label}: {', '.join(changed)} differ between repeats")
            interval = _interval(record)
            if interval is not None:
                entry.runs.append(
                    {"speedup": record.speedup, "speedup_ci": interval, "run_id": record.run_id}
                )
                repeats.setdefault(record.key, []).append((record.speedup, interval))
    if any(len(entry.runs) not in (0, len(runs)) for entry in entries.values()):
        raise BaselineError("the repeats did not measure the same scenarios")
    for entry in entries.values():
        if entry.runs:
            entry.speedup = statistics.median(run["speedup"] for run in entry.runs)
            entry.speedup_ci = [
                min(run["speedup_ci"][0] for run in entry.runs),
                max(run["speedup_ci"][1] for run in entry.runs),
            ]
    noise = derive_min_effect(repeats)
    noise["loaded_records"] = sum(bool(r.load.get("loaded")) for run in runs for r in run)
    return Baseline(
        preset=preset,
        scenarios=list(entries.values()),
        min_effect=noise["min_effect"],
        noise=noise,
        env=dict(runs[0][0].env),
        created_at=created_at or datetime.now(UTC).isoformat(timespec="seconds"),
    )


def save_baseline(baseline: Baseline, path: Path | str) -> None:
    """Write ``baseline`` as indented JSON (sorted keys, so a refresh diffs line by line)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(baseline), indent=1, sort_keys=True, allow_nan=False) + "\n")


def load_baseline(path: Path | str) -> Baseline:
    """Read a baseline file; :class:`BaselineError` (one line) when it is missing or malformed."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BaselineError(
            f"{path}: no such baseline (make one with 'adapterdrop regress --update')"
        ) from None
    except (OSError, ValueError) as exc:
        raise BaselineError(f"{path}: cannot read the baseline ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or data.get("schema") != BASELINE_SCHEMA:
        raise BaselineError(f"{path}: not a baseline of schema {BASELINE_SCHEMA}")
    try:
        scenarios = [ScenarioBaseline(**entry) for entry in data.pop("scenarios")]
        return Baseline(scenarios=scenarios, **data)
    except (KeyError, TypeError) as exc:
        raise BaselineError(f"{path}: malformed baseline ({exc})") from None
