"""The regression gate's verdict logic on synthetic numbers (no timing): statistics, rules, baselines,
checks, the table, re-measuring suspects, and the command's exit statuses."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from adapterdrop.cli import main
from adapterdrop.regress import gate
from adapterdrop.regress.baseline import (
    BaselineError,
    build_baseline,
    derive_min_effect,
    load_baseline,
    save_baseline,
)
from adapterdrop.regress.checks import SPEEDUP, compare, exit_status, suspects
from adapterdrop.regress.rules import (
    CHANGED,
    IMPROVED,
    MISSING,
    OK,
    REGRESSION,
    ExactRule,
    IntervalRule,
    ShiftRule,
)
from adapterdrop.regress.stats import mann_whitney_greater, midranks, separation, smallest_p, u_statistic
from adapterdrop.regress.table import format_markdown, format_text, to_json
from adapterdrop.scenario import Record, Scenario

# ------------------------------------------------------------------------------------------- statistics


def brute_force_p(a, b):
    """P(rank sum of b >= observed) by enumerating every split of the pooled mid-ranks."""
    ranks = midranks([*a, *b])
    observed = sum(ranks[len(a) :])
    splits = list(itertools.combinations(range(len(ranks)), len(b)))
    return sum(sum(ranks[i] for i in split) >= observed - 1e-9 for split in splits) / len(splits)


def test_mann_whitney_exact_values():
    assert mann_whitney_greater([1, 2, 3], [4, 5, 6]) == pytest.approx(1 / 20)
    assert mann_whitney_greater([4, 5, 6], [1, 2, 3]) == 1.0
    assert mann_whitney_greater([1.0, 1.0], [1.0, 1.0]) == 1.0
    assert smallest_p(6, 6) == pytest.approx(1 / 924)
    assert u_statistic([1, 2], [2, 3]) == 3.5


def test_mann_whitney_matches_enumeration_with_and_without_ties():
    rng = random.Random(3)
    for _ in range(40):
        a = [rng.choice(range(6)) for _ in range(rng.randint(1, 5))]
        b = [rng.choice(range(6)) for _ in range(rng.randint(1, 5))]
        assert mann_whitney_greater(a, b) == pytest.approx(brute_force_p(a, b))


def test_midranks_share_ties():
    assert midranks([3.0, 1.0, 3.0, 2.0]) == [3.5, 1.0, 3.5, 2.0]


def test_separation_of_intervals():
    assert separation([1.0, 1.1], [1.05, 1.2]) == 0.0
    assert separation([1.0, 1.1], [1.21, 1.3]) == pytest.approx(0.1)
    assert separation([1.21, 1.3], [1.0, 1.1]) == pytest.approx(0.1)


# ------------------------------------------------------------------------------------------------ rules


def test_exact_rule_has_no_tolerance():
    rule = ExactRule("flops_step")
    assert rule.compare(100, 100).verdict == OK
    assert rule.compare(100, 101).verdict == CHANGED
    assert rule.compare(100, 101).change == pytest.approx(0.01)
    assert rule.compare(100, 99).verdict == CHANGED  # fewer FLOPs is a change too: refresh on purpose
    assert rule.compare(100, None).verdict == MISSING


def test_interval_rule_needs_the_whole_interval_beyond_the_minimum_effect():
    rule = IntervalRule(min_effect=0.1)
    baseline, interval = 1.5, [1.45, 1.55]
    assert rule.compare(baseline, interval, 1.50, [1.46, 1.54]).verdict == OK
    assert rule.compare(baseline, interval, 1.28, [1.25, 1.31]).verdict == REGRESSION  # 1.31 * 1.1 < 1.45
    assert rule.compare(baseline, interval, 1.28, [1.25, 1.32]).verdict == OK  # 1.32 * 1.1 > 1.45
    assert rule.compare(baseline, interval, 1.30, [1.00, 1.60]).verdict == OK  # a wide interval is no proof
    assert rule.compare(baseline, interval, 1.80, [1.75, 1.85]).verdict == IMPROVED  # 1.75 > 1.55 * 1.1
    assert rule.compare(baseline, interval, None, None).verdict == MISSING
    assert rule.compare(baseline, interval, 1.2, [1.1, 1.3]).change == pytest.approx(1.2 / 1.5 - 1)


def test_interval_rule_sees_a_halved_ratio_whatever_the_minimum_effect():
    assert IntervalRule(min_effect=1.5).compare(1.0, [0.9, 1.1], 0.3, [0.25, 0.35]).verdict == REGRESSION


def test_shift_rule_needs_significance_and_the_minimum_effect():
    a = [1.00, 1.01, 0.99, 1.02, 1.00, 0.98]
    slower = [x * 1.2 for x in a]
    assert ShiftRule(alpha=0.01, min_effect=0.05).compare(a, slower).verdict == REGRESSION
    assert ShiftRule(alpha=0.01, min_effect=0.05).compare(slower, a).verdict == IMPROVED
    assert ShiftRule(alpha=0.01, min_effect=0.30).compare(a, slower).verdict == OK  # effect below the minimum
    mixed = [0.99, 1.02, 1.01, 1.00, 0.98, 1.03]
    assert ShiftRule(alpha=0.01, min_effect=0.0).compare(a, mixed).verdict == OK  # not significant
    assert ShiftRule(alpha=0.0005, min_effect=0.05).compare(a, slower).verdict == OK  # p >= 1/924


# --------------------------------------------------------------------------------------------- baseline

COUNTS = dict(
    flops_forward=1000,
    flops_step=3000,
    params_total=500,
    params_trainable=50,
    memory_params_bytes=2000,
    memory_grads_bytes=200,
    memory_optimizer_bytes=400,
)


def group(run_id, speedup, interval, **changes):
    """A synthetic measured group: full (baseline) and adapter with the given speedup and interval."""
    common = dict(
        model="tiny", phase="train", batch_size=2, seq_len=8, comparison="training", baseline="full"
    )
    base = Record.for_scenario(
        Scenario(variant="full", **common), "ok", run_id=run_id, speedup=1.0, speedup_ci=[1.0, 1.0], **COUNTS
    )
    counts = {**COUNTS, **changes}
    variant = Record.for_scenario(
        Scenario(variant="adapter", **common),
        "ok",
        run_id=run_id,
        speedup=speedup,
        speedup_ci=list(interval),
        created_at=f"2026-01-01T00:00:0{len(run_id) % 10}",
        **counts,
    )
    base.created_at = variant.created_at
    return [base, variant]


def test_min_effect_from_the_worst_disagreement_between_repeats():
    noise = derive_min_effect({"k": [(1.5, [1.45, 1.55]), (1.7, [1.65, 1.75])]})
    assert noise["max_separation"] == pytest.approx(1.65 / 1.55 - 1)
    assert noise["min_effect"] == pytest.approx(2 * (1.65 / 1.55 - 1))
    overlapping = derive_min_effect({"k": [(1.5, [1.4, 1.6]), (1.55, [1.45, 1.65])]})
    assert overlapping["max_separation"] == 0.0
    assert overlapping["min_effect"] == pytest.approx(2 * overlapping["median_half_width"])


def test_baseline_keeps_the_envelope_and_round_trips(tmp_path):
    baseline = build_baseline("ci", [group("r1", 1.5, [1.45, 1.55]), group("r2", 1.6, [1.5, 1.7])])
    entry = baseline.scenarios[1]
    assert entry.speedup == pytest.approx(1.55)
    assert entry.speedup_ci == [1.45, 1.7]
    assert entry.deterministic == COUNTS
    assert baseline.scenarios[0].speedup is None  # the group's baseline has no ratio of its own
    save_baseline(baseline, tmp_path / "b.json")
    assert load_baseline(tmp_path / "b.json") == baseline


def test_baseline_refuses_figures_that_differ_between_repeats():
    with pytest.raises(BaselineError, match="flops_step differ"):
        build_baseline("ci", [group("r1", 1.5, [1.4, 1.6]), group("r2", 1.5, [1.4, 1.6], flops_step=3001)])
    with pytest.raises(BaselineError, match="at least 2 repeats"):
        build_baseline("ci", [group("r1", 1.5, [1.4, 1.6])])


def test_load_baseline_errors_are_one_line(tmp_path):
    with pytest.raises(BaselineError, match="no such baseline"):
        load_baseline(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(BaselineError, match="cannot read"):
        load_baseline(tmp_path / "bad.json")


# ------------------------------------------------------------------------------------------------ checks


@pytest.fixture
def baseline():
    return build_baseline("ci", [group("r1", 1.5, [1.45, 1.55]), group("r2", 1.52, [1.47, 1.57])])


def verdicts(rows):
    return [(row.scenario.split()[-1], row.check, row.verdict) for row in rows]


def test_an_unchanged_run_passes(baseline):
    rows = compare(baseline, group("now", 1.51, [1.46, 1.56]))
    assert exit_status(rows) == 0
    assert all(row.verdict == OK for row in rows)


def test_a_slower_variant_is_a_suspect_and_fails(baseline):
    rows = compare(baseline, group("now", 1.0, [0.95, 1.05]))
    assert ("adapter", SPEEDUP, REGRESSION) in verdicts(rows)
    assert [row.check for row in suspects(rows)] == [SPEEDUP]
    assert exit_status(rows) == 1


def test_a_changed_count_fails_and_names_the_figure(baseline):
    rows = compare(baseline, group("now", 1.51, [1.46, 1.56], params_trainable=100, memory_grads_bytes=400))
    changed = [row.check for row in rows if row.verdict == CHANGED]
    assert changed == ["params_trainable", "memory_grads_bytes"]
    assert exit_status(rows) == 1


def test_a_scenario_not_measured_fails(baseline):
    rows = compare(baseline, group("now", 1.51, [1.46, 1.56])[:1])
    assert ("adapter", "measured", MISSING) in verdicts(rows)
    assert exit_status(rows) == 1


def test_only_one_run_per_group_is_read(baseline):
    """An older run that regressed does not mix with the latest run of the group."""
    old = group("old", 1.0, [0.95, 1.05])
    for record in old:
        record.created_at = "2025-01-01T00:00:00"
    assert exit_status(compare(baseline, [*old, *group("new", 1.51, [1.46, 1.56])])) == 0


def test_the_table_shows_every_column_and_a_recomputable_change(baseline):
    rows = compare(baseline, group("now", 1.2, [1.1, 1.25]))
    text = format_text(rows, baseline.min_effect)
    assert text.splitlines()[0].split() == [
        "scenario",
        "check",
        "baseline",
        "now",
        "change",
        "interval",
        "verdict",
    ]
    line = next(line for line in text.splitlines() if " speedup " in line)
    assert "1.510 [1.450, 1.570]" in line and "1.200" in line and "[1.100, 1.250]" in line
    assert f"{1.2 / 1.51 - 1:+.1%}" in line and "REGRESSION" in line
    assert text.splitlines()[-1].startswith("regress: FAIL")
    markdown = format_markdown(rows, baseline.min_effect, title="gate")
    assert "| scenario | check |" in markdown and "**REGRESSION**" in markdown
    data = json.loads(to_json(rows))
    assert data["exit_status"] == 1 and data["rows"][-1]["now_ci"] == [1.1, 1.25]


# ------------------------------------------------------------------------------------- re-measuring


def test_a_suspect_is_measured_again_and_only_the_new_run_counts(baseline, monkeypatch):
    """A suspect whose re-measurement agrees with the baseline passes; one that is slower again fails."""
    calls = []

    def fake_measure(again):
        def measure_groups(groups, timing, log=None):
            calls.append(timing.rounds)
            return again

        return measure_groups

    from adapterdrop.plan import Comparison, SweepPreset

    preset = SweepPreset(
        name="synthetic",
        models=("tiny",),
        threads=1,
        comparisons=(
            Comparison("training", "full", ("adapter",), phases=("train",), batch_sizes=(2,), seq_lens=(8,)),
        ),
    )
    first = group("first", 1.0, [0.95, 1.05])
    monkeypatch.setattr(gate, "measure_groups", fake_measure(group("again", 1.5, [1.46, 1.56])))
    result = gate.run_gate(baseline, preset, first)
    assert calls == [preset.timing.rounds * gate.REMEASURE_FACTOR]
    assert exit_status(result.rows) == 0
    row = next(row for row in result.rows if row.check == SPEEDUP)
    assert row.run_id == "again" and "the first run gave 1.000" in row.notes[0]
    monkeypatch.setattr(gate, "measure_groups", fake_measure(group("again", 1.0, [0.96, 1.04])))
    assert exit_status(gate.run_gate(baseline, preset, first).rows) == 1
    assert exit_status(gate.run_gate(baseline, preset, first, remeasure=False).rows) == 1


# ------------------------------------------------------------------------------------------ the command


def test_regress_usage_errors_exit_2_with_one_line(tmp_path, capsys):
    assert main(["regress", "--update", "--against", "HEAD"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "adapterdrop: error: --update and --against cannot be combined"
    ]
    assert main(["regress", "--baseline", str(tmp_path / "none.json")]) == 2
    assert "no such baseline" in capsys.readouterr().err


def test_regress_checks_a_results_file(tmp_path, baseline, capsys):
    from adapterdrop.results import append_records

    save_baseline(baseline, tmp_path / "b.json")
    append_records(tmp_path / "ok.jsonl", group("now", 1.51, [1.46, 1.56]))
    append_records(tmp_path / "slow.jsonl", group("now", 1.0, [0.95, 1.05]))
    out = tmp_path / "out"
    args = ["regress", "--baseline", str(tmp_path / "b.json"), "--out", str(out), "--no-remeasure"]
    assert main([*args, str(tmp_path / "ok.jsonl")]) == 0
    assert main([*args, str(tmp_path / "slow.jsonl")]) == 1
    assert "REGRESSION" in capsys.readouterr().out
    assert json.loads((out / "regress.json").read_text())["exit_status"] == 1
    assert "**REGRESSION**" in (out / "regress.md").read_text()
    (tmp_path / "broken.jsonl").write_text("not json\n")
    assert main([*args, str(tmp_path / "broken.jsonl")]) == 2


# ------------------------------------------------------------------------------------------- --against


def test_against_rows_need_significance_beyond_the_job_noise():
    from adapterdrop.regress.ab import compare_sides

    a = [1.00, 1.02, 0.99, 1.01, 1.00, 0.98]
    numbers = {
        "same": {"A": a, "B": [1.01, 0.99, 1.00, 1.02, 0.98, 1.01]},
        "slower": {"A": a, "B": [x * 1.2 for x in a]},
        "burst": {"A": [*a[:5], 9.0], "B": [x * 1.2 for x in a]},  # one A process hit by a neighbour
    }
    rows = compare_sides({key: key for key in numbers}, numbers, alpha=0.05)
    assert [row.verdict for row in rows[:2]] == [OK, REGRESSION]
    assert rows[1].change == pytest.approx(0.2)
    assert "p = 0.0011" in rows[1].detail and "minimum effect 3.0%" in rows[1].detail  # 2 x IQR/median
    assert "minimum effect 3.5%" in rows[2].detail  # quartiles: one burst does not blind the effect size
