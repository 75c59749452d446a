"""The calibration campaign's bookkeeping on synthetic gate runs: what counts as a false alarm, what as a
detection of the plant, and which level is the smallest detected in 9 of 10 runs."""

from __future__ import annotations

from adapterdrop.regress import calibrate
from adapterdrop.regress.calibrate import Line, run_line, smallest_detected, to_markdown


def _rows(*rows: tuple[str, str, float]) -> dict:
    return {"rows": [{"check": c, "verdict": v, "change": change} for c, v, change in rows]}


def _replay(monkeypatch, runs):
    """``_one_run`` answers with ``runs`` (exit status, data) in turn."""
    answers = iter(runs)
    monkeypatch.setattr(calibrate, "_one_run", lambda args, plant, out: next(answers))


def test_only_a_regression_of_the_planted_check_is_a_detection(monkeypatch):
    _replay(
        monkeypatch,
        [
            (1, _rows(("speedup", "regression", -0.20), ("flops_step", "ok", 0.0))),
            (1, _rows(("speedup", "ok", -0.01), ("flops_step", "changed", 0.5))),  # failed, not detected
            (0, _rows(("speedup", "ok", -0.02))),
        ],
    )
    line = run_line("gate", [], "adapter:0.2", 3, "speedup", log=lambda message: None)
    assert (line.runs, line.failed, line.detected) == (3, 2, 1)
    assert line.changes == [-0.20, -0.01, -0.02]  # per run the most negative speedup change


def test_against_detections_read_the_step_time_rows(monkeypatch):
    _replay(monkeypatch, [(1, _rows(("step time", "regression", 0.12), ("step time", "ok", 0.01)))])
    line = run_line("against", [], "runner:0.1", 1, "step time", log=lambda message: None)
    assert (line.failed, line.detected, line.changes) == (1, 1, [0.12])  # the largest increase


def test_the_smallest_level_detected_in_nine_of_ten_runs_is_named():
    lines = [
        Line("gate", "", runs=10, failed=0, changes=[-0.01] * 10),
        Line("gate", "adapter:0.05", runs=10, failed=9, detected=8, changes=[-0.03] * 10),
        Line("gate", "adapter:0.1", runs=10, failed=9, detected=9, changes=[-0.06] * 10),
        Line("gate", "adapter:0.2", runs=10, failed=10, detected=10, changes=[-0.12] * 10),
        # the gate's runner line shows it is blind; even detected, it is not the gate's own plant
        Line("gate", "runner:0.2", runs=10, failed=10, detected=10, changes=[-0.02] * 10),
    ]
    assert smallest_detected(lines, "gate") is lines[2]  # 8 of 10 detections is not enough
    markdown = to_markdown(lines, "python -m adapterdrop.regress.calibrate")
    assert "| gate | (none) | 0/10 (false alarms) | - | -1.0% [-1.0%, -1.0%] |" in markdown
    assert "| gate | adapter:0.05 | 9/10 | 8/10 | -3.0% [-3.0%, -3.0%] |" in markdown
    assert "gate: smallest slowdown detected in at least 90% of runs: adapter:0.1, measured -6.0%" in markdown


def test_runs_zero_skips_the_gate_lines(monkeypatch, tmp_path):
    planned = []

    def run_line(mode, args, plant, runs, check, log):
        planned.append(mode)
        return Line(mode, plant, runs=runs)

    monkeypatch.setattr(calibrate, "run_line", run_line)
    calibrate.main(["--runs", "0", "--against-runs", "1", "--out", str(tmp_path)])
    assert planned == ["against"] * 4  # untouched and three runner levels
    assert (tmp_path / "calibration.md").is_file()
    planned.clear()
    calibrate.main(["--runs", "1", "--adapter-levels", "0.1", "--out", str(tmp_path)])
    assert planned == ["gate"] * 3  # untouched, adapter:0.1, runner:0.2; --against-runs defaults to 0
