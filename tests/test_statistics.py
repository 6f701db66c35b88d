"""reporting.statistics against closed forms and known values: Wilson, exact McNemar, Holm, paired bootstraps."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom, norm

from owlore_bench.reporting.statistics import (
    bootstrap_p_value,
    clustered_score_difference,
    holm,
    mcnemar_exact,
    paired_difference,
    seed_question_difference,
    seed_question_interval,
    stratified_average_difference,
    wilson_interval,
)


def textbook_wilson(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson (1927): (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)."""
    z = norm.ppf(1 - (1 - confidence) / 2)
    p = correct / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


@pytest.mark.parametrize("correct, n, confidence", [(45, 50, 0.95), (25, 50, 0.95), (0, 50, 0.95), (7, 9, 0.9)])
def test_wilson_matches_the_textbook_formula(correct, n, confidence):
    assert wilson_interval(correct, n, confidence) == pytest.approx(textbook_wilson(correct, n, confidence), abs=1e-12)


def test_a_50_question_cell_is_about_plus_minus_13_points():
    low, high = wilson_interval(25, 50)
    assert 100 * (high - low) / 2 == pytest.approx(13.2, abs=0.2)


def test_wilson_refuses_impossible_counts():
    with pytest.raises(ValueError):
        wilson_interval(51, 50)


def _with_discordant(a_only: int, b_only: int, agree: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes where a alone is right on a_only questions, b alone on b_only, both right on `agree`, both wrong
    on `agree` (shuffled, so position carries no information)."""
    a = np.array([1] * a_only + [0] * b_only + [1] * agree + [0] * agree)
    b = np.array([0] * a_only + [1] * b_only + [1] * agree + [0] * agree)
    order = np.random.default_rng(1).permutation(a.size)
    return a[order], b[order]


def test_exact_mcnemar_is_twice_the_binomial_tail():
    expected = 2 * binom.cdf(2, 12, 0.5)
    assert mcnemar_exact(10, 2) == pytest.approx(expected, rel=1e-12)
    a, b = _with_discordant(10, 2)
    result = paired_difference(a, b)
    assert (result.a_only, result.b_only) == (10, 2)
    assert result.p_value == pytest.approx(expected, rel=1e-12)
    assert paired_difference(b, a).p_value == pytest.approx(expected, rel=1e-12)  # two-sided: symmetric


def test_mcnemar_without_discordant_pairs_is_one():
    assert mcnemar_exact(0, 0) == 1.0


def test_holm_known_values():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.01]) == pytest.approx([0.5, 0.02])
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.04]) == pytest.approx([0.04])  # one test: nothing to adjust


def test_identical_runs_differ_by_zero_with_a_zero_interval():
    a = np.random.default_rng(0).integers(0, 2, size=60)
    result = paired_difference(a, a.copy())
    assert (result.points, result.low, result.high, result.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_always_right_against_always_wrong_is_plus_100():
    result = paired_difference(np.ones(30), np.zeros(30))
    assert (result.points, result.low, result.high) == (100.0, 100.0, 100.0)
    assert result.p_value == pytest.approx(2 * 0.5 ** 30)
    assert paired_difference(np.zeros(30), np.ones(30)).points == -100.0  # Δ is a minus b


def test_the_bootstrap_interval_is_paired_seeded_and_around_the_difference():
    a, b = _with_discordant(10, 2)
    result = paired_difference(a, b, n_boot=4000, seed=3)
    assert result.points == pytest.approx(100 * 8 / 52)
    assert result.low < result.points < result.high
    # paired: the spread comes from the 12 discordant questions only, the sd of a mean difference of n draws
    d = a - b
    expected_half = 1.96 * 100 * d.std() / math.sqrt(d.size)
    assert (result.high - result.low) / 2 == pytest.approx(expected_half, rel=0.1)
    assert paired_difference(a, b, n_boot=4000, seed=3) == result  # seeded: reproducible


def test_paired_difference_refuses_unpaired_input():
    with pytest.raises(ValueError):
        paired_difference([1, 0, 1], [1, 0])
    with pytest.raises(ValueError):
        paired_difference([1, 0, 2], [1, 0, 1])


def test_stratified_average_is_the_plain_mean_over_tasks():
    per_task_a = {"small": np.ones(10), "large": np.zeros(90)}
    per_task_b = {"small": np.zeros(10), "large": np.zeros(90)}
    result = stratified_average_difference(per_task_a, per_task_b)
    # mean over tasks: (100 + 0) / 2 = +50, not the pooled 10/100 = +10; nothing varies when resampled
    assert (result.points, result.low, result.high, result.n) == (50.0, 50.0, 50.0, 100)
    same = stratified_average_difference([np.ones(5), np.zeros(7)], [np.ones(5), np.zeros(7)])
    assert (same.points, same.low, same.high) == (0.0, 0.0, 0.0)


def test_stratified_interval_combines_the_tasks_spreads():
    a1, b1 = _with_discordant(10, 2)
    a2, b2 = _with_discordant(3, 9, agree=30)
    result = stratified_average_difference({"t1": a1, "t2": a2}, {"t1": b1, "t2": b2}, n_boot=4000)
    one, two = paired_difference(a1, b1), paired_difference(a2, b2)
    assert result.points == pytest.approx((one.points + two.points) / 2)
    spreads = [100 * (a - b).std() / math.sqrt(a.size) for a, b in ((a1, b1), (a2, b2))]
    assert (result.high - result.low) / 2 == pytest.approx(1.96 * math.hypot(*spreads) / 2, rel=0.1)


def test_stratified_refuses_mismatched_tasks():
    with pytest.raises(ValueError):
        stratified_average_difference({"x": [1]}, {"y": [1]})


# ---------------------------------------------------------------- several seeds, MT-Bench scores
def test_two_level_interval_of_identical_seeds_is_the_question_bootstrap():
    row = np.array(_with_discordant(10, 2)[0], dtype=float)
    point, low, high = seed_question_interval([np.vstack([row, row, row])], n_boot=4000)
    assert point == pytest.approx(100 * row.mean())
    # seeds that agree add nothing: the spread is the questions' alone (normal approximation of the bootstrap)
    half = 1.96 * 100 * row.std() / math.sqrt(row.size)
    assert (high - low) / 2 == pytest.approx(half, rel=0.12)
    assert seed_question_interval([np.ones((2, 9))]) == (100.0, 100.0, 100.0)


def test_two_level_interval_widens_with_seed_to_seed_spread():
    rng = np.random.default_rng(4)
    agreeing = np.tile(rng.integers(0, 2, 200), (4, 1)).astype(float)
    spread = agreeing.copy()
    spread[0], spread[1] = 1.0, 0.0  # two seeds at 100 % and 0 %: the seed level dominates
    narrow, wide = (seed_question_interval([m], n_boot=2000) for m in (agreeing, spread))
    assert wide[2] - wide[1] > 3 * (narrow[2] - narrow[1])


def test_two_level_difference_p_value_and_sign():
    a, b = _with_discordant(20, 2)
    a, b = np.vstack([a, a]).astype(float), np.vstack([b, b]).astype(float)
    found = seed_question_difference([a], [b], n_boot=4000)
    assert found.points == pytest.approx(100 * 18 / 62) and found.low > 0
    assert found.p_value < 0.01
    assert seed_question_difference([b], [a], n_boot=4000).points == pytest.approx(-found.points)
    same = seed_question_difference([a], [a.copy()], n_boot=500)
    assert (same.points, same.low, same.high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    with pytest.raises(ValueError):
        seed_question_difference([a], [b[:, :10]])


def test_bootstrap_p_value_is_never_zero():
    assert bootstrap_p_value(np.ones(999)) == pytest.approx(2 / 1000)
    assert bootstrap_p_value(np.array([-1.0, 1.0])) == 1.0


def test_clustered_score_difference_is_the_ratio_of_sums():
    sums_a, counts_a = [16, 8, 9], [2, 2, 1]  # question 3: one turn unparsed
    sums_b, counts_b = [8, 8, 10], [2, 2, 2]
    found = clustered_score_difference(sums_a, counts_a, sums_b, counts_b, n_boot=2000)
    assert found.points == pytest.approx(33 / 5 - 26 / 6)  # mean over valid judgments, not over questions
    assert found.low <= found.points <= found.high and found.n == 3
    same = clustered_score_difference(sums_a, counts_a, sums_a, counts_a, n_boot=200)
    assert (same.points, same.low, same.high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    with pytest.raises(ValueError):
        clustered_score_difference([1], [0], [1], [1])
