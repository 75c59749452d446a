"""The gate's calibration campaign: false alarms on an untouched tree and detection of planted slowdowns.

``python -m adapterdrop.regress.calibrate`` (``nox -s regress-calibrate``) runs, each as its own process
exactly as CI runs it:

1. ``adapterdrop regress --baseline B`` ``--runs`` times on the untouched tree: every failing run is a
   false alarm;
2. the same with ``ADAPTERDROP_PLANT=adapter:F`` for each F of ``--adapter-levels`` (busy work of F times
   the layer's time in every adapter block, see :mod:`adapterdrop.testing_plant`): a run detects the
   slowdown when a speedup row says ``regression``;
3. the same with ``ADAPTERDROP_PLANT=runner:F`` for each F of ``--gate-runner-levels`` (busy work of F
   times every layer's forward and backward in the shared runner: every variant alike): the ratio gate is
   blind to it, and this line shows it (its "detected" count should stay near 0);
4. with ``--against-runs`` > 0: ``adapterdrop regress --against HEAD`` untouched (false alarms) and with
   ``ADAPTERDROP_PLANT=runner:F`` for each F of ``--runner-levels``, which ``--against`` must see.

A run *fails* when it exits 1 (on an untouched tree: a false alarm); it *detects* a plant when a row of the
check the plant is meant for (``speedup`` for the gate, ``step time`` for ``--against``) says
``regression``, so a run failed for another reason (a changed figure, a missing scenario) is not counted
as a detection.

For each line it reports the runs, how many failed, and the slowdown the runs measured: per run the largest
slowdown among its rows (the most negative speedup change for the ratio gate, the largest step-time
increase for ``--against``), as median and range over the runs, so "a planted 20% slowdown" is a measured
figure, not a nominal one (on an untouched tree it is the worst drift the gate tolerated). The
smallest level detected in at least 9 of 10 runs is named. Writes ``calibration.json`` and
``calibration.md`` to ``--out``. Run it on an idle machine: it measures the gate, not the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from adapterdrop.testing_plant import ENV as PLANT_ENV

#: a level is "detected" when at least this share of its runs failed (9 of 10)
DETECTION_SHARE = 0.9


@dataclass
class Line:
    """One line of the campaign: a mode, a plant, and what its runs gave."""

    mode: str
    plant: str
    runs: int = 0
    failed: int = 0
    detected: int = 0
    changes: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def cells(self) -> list[str]:
        changes = sorted(self.changes)
        measured = (
            f"{statistics.median(changes):+.1%} [{changes[0]:+.1%}, {changes[-1]:+.1%}]" if changes else "-"
        )
        failed = f"{self.failed}/{self.runs}" + (" (false alarms)" if not self.plant else "")
        detected = f"{self.detected}/{self.runs}" if self.plant else "-"
        return [self.mode, self.plant or "(none)", failed, detected, measured]


def _one_run(args: list[str], plant: str, out: Path) -> tuple[int, dict]:
    env = {name: value for name, value in os.environ.items() if name != PLANT_ENV}
    if plant:
        env[PLANT_ENV] = plant
    done = subprocess.run(
        [sys.executable, "-m", "adapterdrop", "regress", *args, "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
    )
    stem = "against" if "--against" in args else "regress"
    path = out / f"{stem}.json"
    data = json.loads(path.read_text()) if done.returncode in (0, 1) and path.is_file() else {}
    if done.returncode not in (0, 1):
        data["error"] = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return done.returncode, data


def _detects(data: dict, check: str) -> bool:
    """Whether a row of ``check`` says ``regression``."""
    return any(row["check"] == check and row["verdict"] == "regression" for row in data.get("rows", []))


def _largest_slowdown(data: dict, check: str) -> float | None:
    """The run's largest slowdown among its rows: the most negative speedup change, or the largest
    step-time increase (``--against``)."""
    changes = [
        row["change"] for row in data.get("rows", []) if row["check"] == check and row["change"] is not None
    ]
    if not changes:
        return None
    return min(changes) if check == "speedup" else max(changes)


def run_line(mode: str, args: list[str], plant: str, runs: int, check: str, log) -> Line:
    """``runs`` runs of ``adapterdrop regress ARGS`` with ``plant`` set; counts failures (exit 1)."""
    line = Line(mode, plant)
    for index in range(1, runs + 1):
        with tempfile.TemporaryDirectory() as folder:
            status, data = _one_run(args, plant, Path(folder))
        line.runs += 1
        if status == 1:
            line.failed += 1
        if _detects(data, check):
            line.detected += 1
        if "error" in data:
            line.errors.append(data["error"])
        change = _largest_slowdown(data, check)
        if change is not None:
            line.changes.append(change)
        log(f"{mode} {plant or '(untouched)'} run {index}/{runs}: exit {status}")
    return line


#: the plant each mode is meant to see; the gate's runner lines show that it is blind, not how well it sees
MEANT_FOR = {"gate": "adapter:", "against": "runner:"}


def smallest_detected(lines: Sequence[Line], mode: str) -> Line | None:
    """The line of ``mode``'s own plant with the smallest measured slowdown detected in >= 90% of its runs."""
    detected = [
        line
        for line in lines
        if line.mode == mode
        and line.plant.startswith(MEANT_FOR[mode])
        and line.changes
        and line.detected >= DETECTION_SHARE * line.runs
    ]
    return min(detected, key=lambda line: abs(statistics.median(line.changes)), default=None)


def to_markdown(lines: Sequence[Line], command: str) -> str:
    header = [
        "mode",
        "plant (ADAPTERDROP_PLANT)",
        "runs failed (exit 1)",
        "runs that detected the plant",
        "largest slowdown per run: median [min, max]",
    ]
    out = [f"`{command}`", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(line.cells()) + " |" for line in lines]
    for mode in dict.fromkeys(line.mode for line in lines):
        best = smallest_detected(lines, mode)
        if best is not None:
            out.append(
                f"\n{mode}: smallest slowdown detected in at least {DETECTION_SHARE:.0%} of runs: "
                f"{best.plant}, measured {statistics.median(best.changes):+.1%}"
            )
    errors = [f"- {line.mode} {line.plant}: {error}" for line in lines for error in line.errors]
    return "\n".join(out + (["", "errors:", *errors] if errors else [])) + "\n"


def _levels(text: str) -> list[str]:
    return [level.strip() for level in text.split(",") if level.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adapterdrop.regress.calibrate", description=__doc__)
    parser.add_argument("--baseline", default="profiles/baselines/ci.json", help="baseline the gate checks")
    parser.add_argument(
        "--runs", type=int, default=10, help="runs per line of the ratio gate (default 10; 0: skip the gate)"
    )
    parser.add_argument(
        "--adapter-levels", default="0.05,0.1,0.2,0.4", help="F of adapter:F, comma-separated"
    )
    parser.add_argument(
        "--gate-runner-levels",
        default="0.2",
        help="F of runner:F the ratio gate runs to show it is blind to them (comma-separated; empty: skip)",
    )
    parser.add_argument(
        "--against-runs", type=int, default=0, help="runs per line of --against HEAD (default 0: skip)"
    )
    parser.add_argument("--runner-levels", default="0.05,0.1,0.2", help="F of runner:F, comma-separated")
    parser.add_argument("--out", type=Path, default=Path("results/calibrate"), help="output folder")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    gate = ["--baseline", args.baseline]
    plans = [("gate", gate, "", args.runs, "speedup")]
    plans += [("gate", gate, f"adapter:{f}", args.runs, "speedup") for f in _levels(args.adapter_levels)]
    plans += [("gate", gate, f"runner:{f}", args.runs, "speedup") for f in _levels(args.gate_runner_levels)]
    against = ["--against", "HEAD", "--baseline", args.baseline]
    plans.append(("against", against, "", args.against_runs, "step time"))
    plans += [
        ("against", against, f"runner:{f}", args.against_runs, "step time")
        for f in _levels(args.runner_levels)
    ]
    lines = [
        run_line(mode, plan_args, plant, runs, check, log)
        for mode, plan_args, plant, runs, check in plans
        if runs > 0  # --runs 0 calibrates --against alone; --against-runs 0 (the default), the gate alone
    ]
    command = "python -m adapterdrop.regress.calibrate " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "calibration.json").write_text(
        json.dumps({"command": command, "lines": [asdict(line) for line in lines]}, indent=1) + "\n"
    )
    markdown = to_markdown(lines, command.strip())
    (args.out / "calibration.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
