"""Is a difference between two models more than luck? The two statistics a scoreboard needs.

- Wilson score interval for one model's accuracy (k right of n): honest at 0/n and n/n, where the
  textbook normal interval collapses to a point.
- Exact two-sided McNemar test for two models answering the same questions: only the discordant
  questions (right for one, wrong for the other) carry information; under "no difference" each of
  them is a fair coin, so the p-value is a binomial tail. Exact, because benchmarks here are small.

Both are a few lines of the standard library (math.comb); scipy would be a 40 MB dependency for them.
"""

from __future__ import annotations

import math

#: z for a two-sided 95% interval.
Z95 = 1.959963984540054
ALPHA = 0.05


def wilson_interval(correct: int, total: int, z: float = Z95) -> tuple[float, float]:
    """(low, high) of the Wilson score interval for correct/total; (0, 1) when there is no data."""
    if total <= 0:
        return 0.0, 1.0
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    # At 0/n and n/n the exact bound is 0 or 1; floating point would leave 1e-17 or 0.9999999.
    low = 0.0 if correct == 0 else max(0.0, centre - half)
    high = 1.0 if correct == total else min(1.0, centre + half)
    return low, high


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (questions only A got right, only
    B got right). 1.0 when there are no discordant questions (nothing tells the models apart)."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    k = min(a_only, b_only)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def discordant(a_right: list[bool], b_right: list[bool]) -> tuple[int, int]:
    """(questions only A got right, questions only B got right), over the same questions in order."""
    a_only = sum(1 for a, b in zip(a_right, b_right, strict=True) if a and not b)
    b_only = sum(1 for a, b in zip(a_right, b_right, strict=True) if b and not a)
    return a_only, b_only


def questions_needed(a_only: int, b_only: int, total: int, alpha: float = ALPHA,
                     limit: int = 100_000) -> int | None:
    """How many questions in all a benchmark would need for this difference to be significant, if
    more questions like these split the same way (discordant counts scaled up). None when the split
    is even (no amount of such questions would tell the models apart) or it would take over `limit`."""
    if total <= 0 or a_only == b_only:
        return None
    if mcnemar_exact(a_only, b_only) < alpha:
        return total
    lo, hi = total, total
    while True:  # double until significant, then bisect: p falls (almost) monotonically with size
        hi *= 2
        if hi > limit:
            return None
        if _scaled_p(a_only, b_only, total, hi) < alpha:
            break
        lo = hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _scaled_p(a_only, b_only, total, mid) < alpha:
            hi = mid
        else:
            lo = mid
    return hi


def _scaled_p(a_only: int, b_only: int, total: int, size: int) -> float:
    f = size / total
    return mcnemar_exact(round(a_only * f), round(b_only * f))
