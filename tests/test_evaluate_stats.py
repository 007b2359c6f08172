"""Wilson interval and exact McNemar against known values (published tables and hand-computed tails)."""

from __future__ import annotations

import pytest

from pipeline.evaluate.stats import discordant, mcnemar_exact, questions_needed, wilson_interval


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    (81, 263, 0.2553, 0.3662),   # Newcombe (1998), Statistics in Medicine 17:857, example (a)
    (15, 148, 0.0624, 0.1605),   # Newcombe (1998), example (b)
    (0, 20, 0.0, 0.1611),        # Newcombe (1998), example (c): 0/20
    (1, 29, 0.0061, 0.1718),     # Newcombe (1998), example (d)
    (5, 10, 0.2366, 0.7634),
    (10, 10, 0.7225, 1.0),
])
def test_wilson_matches_published_bounds(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_wilson_edges():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(0, 18)[0] == 0.0 and wilson_interval(18, 18)[1] == 1.0


@pytest.mark.parametrize(("a_only", "b_only", "p"), [
    (0, 0, 1.0),                      # all agree: nothing tells them apart
    (1, 1, 1.0),
    (10, 0, 2 / 2**10),               # 0.001953125
    (0, 10, 2 / 2**10),               # symmetric
    (3, 7, 2 * (1 + 10 + 45 + 120) / 2**10),  # 0.34375
    (5, 5, 1.0),                      # an even split is capped at 1
    (1, 0, 1.0),
    (6, 0, 0.03125),
    (5, 0, 0.0625),                   # one question short of p < 0.05
])
def test_mcnemar_exact_hand_computed(a_only, b_only, p):
    assert mcnemar_exact(a_only, b_only) == pytest.approx(p, rel=1e-12)


def test_all_disagree_table_is_significant():
    a = [True] * 18
    b = [False] * 18
    assert discordant(a, b) == (18, 0)
    assert mcnemar_exact(*discordant(a, b)) == pytest.approx(2 / 2**18)
    assert discordant(a, a) == (0, 0) and mcnemar_exact(0, 0) == 1.0


def test_questions_needed():
    assert questions_needed(6, 0, 18) == 18             # already significant
    assert questions_needed(3, 3, 18) is None           # an even split never becomes significant
    n = questions_needed(3, 1, 18)                      # 3 vs 1 of 18: not yet
    assert n is not None and n > 18
    f = n / 18
    assert mcnemar_exact(round(3 * f), round(1 * f)) < 0.05
    f = (n - 1) / 18
    assert mcnemar_exact(round(3 * f), round(1 * f)) >= 0.05
