"""Compare the speedups of two results files of the same preset, ratio by ratio (docs/measurement.md).

``python bench/tools/compare_runs.py BEFORE.jsonl AFTER.jsonl`` prints, for every record with a speedup in
both files (matched by key), each run's speedup with its 95% interval and rounds, whether AFTER's speedup
lies inside BEFORE's interval, and the interval's relative half-width (reach) in each; then how many
ratios lie inside, and how many intervals are wider in AFTER. Only the latest run of each group is read
(:func:`adapterdrop.results.latest_runs`), so every ratio comes from one run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from adapterdrop.measure.stats import relative_half_width
from adapterdrop.results import latest_runs, load_records
from adapterdrop.scenario import Record


def _speedups(path: Path) -> dict[str, Record]:
    records, _ = latest_runs(load_records(path))
    return {r.key: r for r in records if r.status == "ok" and r.speedup_ci and r.variant != r.baseline}


def _cell(record: Record) -> str:
    low, high = record.speedup_ci
    return f"{record.speedup:.3f} [{low:.3f}, {high:.3f}] ({record.timing.get('rounds')})"


def compare(before: Path, after: Path) -> str:
    """The comparison table (markdown) and its summary lines."""
    old, new = _speedups(before), _speedups(after)
    lines = [
        "| comparison | cell | variant | before: speedup [95%] (rounds) | after: speedup [95%] (rounds) "
        "| after inside before's interval | reach before | reach after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    inside = wider = 0
    for key, a in new.items():
        b = old.get(key)
        if b is None:
            continue
        reach_b = relative_half_width(b.speedup, tuple(b.speedup_ci))
        reach_a = relative_half_width(a.speedup, tuple(a.speedup_ci))
        within = b.speedup_ci[0] <= a.speedup <= b.speedup_ci[1]
        inside += within
        wider += reach_a > reach_b
        cell = f"{a.phase} b={a.batch_size} s={a.seq_len}"
        lines.append(
            f"| {a.comparison} | {cell} | {a.variant} | {_cell(b)} | {_cell(a)} | "
            f"{'yes' if within else 'no'} | {reach_b:.1%} | {reach_a:.1%} |"
        )
    matched = len(lines) - 2
    lines += [
        "",
        f"{inside} of {matched} speedups of AFTER inside BEFORE's interval; "
        f"{wider} of {matched} intervals wider in AFTER.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args()
    print(compare(args.before, args.after))


if __name__ == "__main__":
    main()
