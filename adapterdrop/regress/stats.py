"""Statistics of the regression gate that need no torch: an exact Mann-Whitney U test and noise margins.

:func:`mann_whitney_greater` is the exact one-sided Mann-Whitney U (Wilcoxon rank-sum) test: the p-value
is the share of the C(n + m, n) ways of splitting the pooled samples into two groups of the observed sizes
whose second group has a rank sum at least the observed one. Ties get mid-ranks and the null distribution
is computed with those mid-ranks (the test conditional on the tie pattern), so it is exact with or without
ties. The count is a dynamic programme over (group size, rank sum), instant for the sample sizes here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def midranks(values: Sequence[float]) -> list[float]:
    """Ranks 1..N of ``values`` (in their order), tied values sharing the mean of their ranks."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def u_statistic(a: Sequence[float], b: Sequence[float]) -> float:
    """Mann-Whitney U of ``b`` over ``a``: pairs (a_i, b_j) with b_j > a_i, a tie counting one half."""
    return sum(1.0 if y > x else 0.5 if y == x else 0.0 for x in a for y in b)


def mann_whitney_greater(a: Sequence[float], b: Sequence[float]) -> float:
    """Exact one-sided p-value of H0 "a and b come from one distribution" against "b tends to be larger".

    p = P(rank sum of b >= observed) over every equally likely split of the pooled samples.
    """
    if not a or not b:
        raise ValueError("the Mann-Whitney U test needs at least one sample on each side")
    pooled = [*a, *b]
    doubled = [round(2 * r) for r in midranks(pooled)]  # mid-ranks are halves: work in integers
    observed = sum(doubled[len(a) :])
    size = len(b)
    # ways[k][s]: number of k-element subsets of the pooled ranks whose doubled ranks sum to s
    ways = [dict[int, int]() for _ in range(size + 1)]
    ways[0][0] = 1
    for rank in doubled:
        for k in range(size, 0, -1):
            for total, count in ways[k - 1].items():
                ways[k][total + rank] = ways[k].get(total + rank, 0) + count
    at_least = sum(count for total, count in ways[size].items() if total >= observed)
    return at_least / math.comb(len(pooled), size)


def smallest_p(n: int, m: int) -> float:
    """The smallest p-value an exact test of n against m samples can give: 1 / C(n + m, m)."""
    return 1 / math.comb(n + m, m)


def relative_change(baseline: float, now: float) -> float:
    """now / baseline - 1 (0.1 = 10% larger)."""
    return now / baseline - 1


def separation(first: Sequence[float], second: Sequence[float]) -> float:
    """How far apart two intervals [low, high] lie, relative: 0 if they overlap, else gap / lower end's top.

    ``separation([1.0, 1.1], [1.21, 1.3])`` = 1.21 / 1.1 - 1 = 0.1.
    """
    (low_a, high_a), (low_b, high_b) = first, second
    return max(0.0, low_b / high_a - 1, low_a / high_b - 1)
