"""Pass/fail criteria of the bench suites, kept apart from pytest so that a test can run them on records
measured with a planted defect (``tests/test_bench_criteria.py``).

Parallel multi-task inference: N tasks that share their K lowest layers run those layers once instead of N
times. Counting every layer as one unit of cost, the ideal speedup over sharing none (``parallel:tasks=N``,
K = 0) is the layer-count ideal N·L / (K + N·(L − K)) (``layer_count_ideal``); no sharing at all gives 1.
:func:`sharing_violations` asks each run's own 95% interval (``speedup_ci``, paired bootstrap over its
rounds) to lie above the midpoint of the two, 1 + (ideal − 1) / 2: the run must show, at 95%, at least half
of the layer-count ideal's gain. That rejects no sharing, and sharing only half the layers, on any device
and whatever the noise: a noisy run has a wide interval and fails rather than passing by chance. (The
FLOPs ideal is higher than the layer-count ideal, since with Pfeiffer placement layer K's attention and
feed-forward also run once; the midpoint uses the lower of the two.)
"""

from __future__ import annotations

from collections.abc import Sequence

from adapterdrop.ideals import layer_count_ideal
from adapterdrop.scenario import Record


def sharing_floor(tasks: int, dropped: int, layers: int) -> float:
    """Midpoint between no sharing (1) and the layer-count ideal of sharing ``dropped`` of ``layers``."""
    return 1 + (layer_count_ideal(tasks, dropped, layers) - 1) / 2


def sharing_violations(records: Sequence[Record], tasks: int, layers: int) -> list[str]:
    """One line per variant of a parallel group (``records[0]`` is K = 0) whose interval does not lie
    above :func:`sharing_floor` (with the record's noise reasons, e.g. a loaded machine, to say why);
    empty when every variant shows its sharing."""
    violations = []
    for record in records[1:]:
        floor = sharing_floor(tasks, record.variant_info["dropped_layers"], layers)
        interval = record.speedup_ci
        if interval is None or not interval[0] > floor:
            shown = (
                "no interval" if interval is None else f"95% interval [{interval[0]:.3f}, {interval[1]:.3f}]"
            )
            violations.append(
                f"{record.variant}: speedup {record.speedup:.3f}, {shown} not above {floor:.3f}"
            )
    return violations
