"""The serving comparison: `serve` records against the base model, throughput relative to it against N."""

from __future__ import annotations

from adapterdrop.report.comparisons import COMPARISONS
from adapterdrop.report.plots.serving import option, select
from adapterdrop.report.records import ReportRecord
from adapterdrop.scenario import Record, Scenario

#: the markers of the mixes' points (the caps of the interval bars and the connecting lines have others)
MIX_MARKERS = ("o", "s", "^", "D")
#: variant -> median step time (s); the base model takes 0.010 s
DECODE = {
    "full": 0.010,
    "serve:adapters=2": 0.012,
    "serve": 0.0125,
    "serve:impl=peft,adapters=2": 0.018,
    "serve:impl=peft": 0.025,
    "serve:impl=peft,mix=zipf": 0.024,
}


def records() -> list[ReportRecord]:
    made = []
    for variant, seconds in DECODE.items():
        scenario = Scenario(
            model="llama-small", variant=variant, phase="decode", batch_size=8, seq_len=128, baseline="full"
        )
        record = Record.for_scenario(
            scenario,
            "ok",
            run_id="r1",
            time_median_s=seconds,
            time_samples_s=[seconds * (1 + 0.001 * i) for i in (-1, 0, 1, 0, -1)],
            speedup=0.010 / seconds,
            speedup_ci=[0.010 / seconds * 0.99, 0.010 / seconds * 1.01],
        )
        made.append(ReportRecord.of(record, "memory"))
    return made


def test_options_read_their_defaults_where_the_name_leaves_them_out() -> None:
    by_variant = {r.variant: r for r in records()}
    assert (option(by_variant["serve"], "impl"), option(by_variant["serve"], "adapters")) == ("native", 8)
    assert option(by_variant["serve:impl=peft,mix=zipf"], "mix") == "zipf"


def test_the_serving_comparison_draws_one_curve_per_implementation_and_mix() -> None:
    made = records()
    assert [r.variant for r in select(made)] == list(DECODE)[1:]  # the baseline has no serve family
    comparison = next(c for c in COMPARISONS if c.name == "serving")
    figure = comparison.draw(comparison.select(made))
    (ax,) = [a for a in figure.axes if a.get_visible()]
    curves = {
        (line.get_color(), line.get_linestyle()): list(line.get_xdata())
        for line in ax.get_lines()
        if len(line.get_xdata()) > 1 and line.get_marker() in MIX_MARKERS
    }
    assert sorted(curves.values()) == [[2, 8], [2, 8]]  # native and peft under uniform, N = 2 and 8
    assert len({colour for colour, _ in curves}) == 2
    drawn = [line for line in ax.get_lines() if line.get_marker() in MIX_MARKERS]
    ys = sorted(round(float(y), 3) for line in drawn for y in line.get_ydata())
    assert ys[:1] == [round(0.010 / 0.025, 3)]  # the slowest: peft with 8 adapters, uniform


def test_the_reports_defaults_are_the_serve_variants_own() -> None:
    from adapterdrop.backends.serving import SERVE
    from adapterdrop.report.plots.serving import DEFAULTS

    assert {name: SERVE.option(name).default for name in DEFAULTS} == DEFAULTS
