"""Ideal speedups that follow from counting layers, shared by the bench suites and the report (no torch).

The FLOPs ideal of a record (``ideal_speedup``) is measured by counting operations; the ideals here are
closed forms of the model's geometry, so a reader can draw them without building anything.
"""

from __future__ import annotations


def layer_count_ideal(tasks: int, dropped: int, layers: int) -> float:
    """Ideal speedup of N tasks sharing their K lowest of L layers over sharing none: N·L / (K + N·(L − K)).

    Counts every layer as the same cost and only layers 0..K-1 as shared; FLOPs give the exact figure.
    """
    return tasks * layers / (dropped + tasks * (layers - dropped))
