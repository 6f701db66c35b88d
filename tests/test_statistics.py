"""reporting.statistics and reporting.bootstrap against closed forms, hand counts and statsmodels: Wilson, exact
McNemar and its matching interval, Holm, the two-level bootstrap (its exact ties, B1), the fallbacks where a
bootstrap degenerates (no zero-width interval, B2), and the agreement of every interval with its p-value."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom, norm
from statsmodels.stats.contingency_tables import mcnemar as statsmodels_mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from owlore_bench.reporting import bootstrap
from owlore_bench.reporting.score_statistics import clustered_score_difference
from owlore_bench.reporting.statistics import (
    exact_paired_interval,
    holm,
    mcnemar_exact,
    paired_difference,
    seed_question_difference,
    seed_question_interval,
    wilson_interval,
)


def textbook_wilson(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson (1927): (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)."""
    z = norm.ppf(1 - (1 - confidence) / 2)
    p = correct / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


@pytest.mark.parametrize("correct, n, confidence", [(45, 50, 0.95), (25, 50, 0.95), (0, 50, 0.95), (7, 9, 0.9)])
def test_wilson_matches_the_textbook_formula_and_statsmodels(correct, n, confidence):
    assert wilson_interval(correct, n, confidence) == pytest.approx(textbook_wilson(correct, n, confidence), abs=1e-12)
    assert wilson_interval(correct, n, confidence) == pytest.approx(
        proportion_confint(correct, n, alpha=1 - confidence, method="wilson"), abs=1e-12)


def test_a_50_question_cell_is_about_plus_minus_13_points():
    low, high = wilson_interval(25, 50)
    assert 100 * (high - low) / 2 == pytest.approx(13.2, abs=0.2)
    with pytest.raises(ValueError):
        wilson_interval(51, 50)


def _with_discordant(a_only: int, b_only: int, agree: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes where a alone is right on a_only questions, b alone on b_only, both right on `agree`, both wrong
    on `agree` (shuffled, so position carries no information)."""
    a = np.array([1] * a_only + [0] * b_only + [1] * agree + [0] * agree)
    b = np.array([0] * a_only + [1] * b_only + [1] * agree + [0] * agree)
    order = np.random.default_rng(1).permutation(a.size)
    return a[order], b[order]


def test_exact_mcnemar_is_twice_the_binomial_tail_and_statsmodels():
    expected = 2 * binom.cdf(2, 12, 0.5)
    assert mcnemar_exact(10, 2) == pytest.approx(expected, rel=1e-12)
    for a_only, b_only in ((10, 2), (3, 3), (0, 5), (17, 9)):
        table = np.array([[20, a_only], [b_only, 20]])
        assert mcnemar_exact(a_only, b_only) == pytest.approx(statsmodels_mcnemar(table, exact=True).pvalue)
    a, b = _with_discordant(10, 2)
    result = paired_difference(a, b)
    assert (result.a_only, result.b_only, result.test) == (10, 2, "exact McNemar")
    assert result.p_value == pytest.approx(expected, rel=1e-12)
    assert paired_difference(b, a).p_value == pytest.approx(expected, rel=1e-12)  # two-sided: symmetric
    assert mcnemar_exact(0, 0) == 1.0


# ---------------------------------------------------------------- the exact interval matching McNemar (B2)
def test_exact_interval_by_hand_from_the_two_clopper_pearson_intervals():
    # 10 of 52 questions a alone, 2 b alone: psi = 12 / 52, pi = 10 / 12, both Clopper-Pearson (statsmodels 'beta')
    psi_low, psi_high = proportion_confint(12, 52, method="beta")
    pi_low, pi_high = proportion_confint(10, 12, method="beta")
    expected = (100 * psi_high * (2 * pi_low - 1) if pi_low < 0.5 else 100 * psi_low * (2 * pi_low - 1),
                100 * psi_high * (2 * pi_high - 1))
    assert exact_paired_interval(10, 2, 52) == pytest.approx(expected, rel=1e-9)


def test_no_discordant_question_still_leaves_an_interval():
    """[+0.0, +0.0] was B2: 0 of 50 questions differ, yet up to psi = 1 - 0.025^(1/50) of unseen ones could."""
    bound = 100 * (1 - 0.025 ** (1 / 50))
    assert exact_paired_interval(0, 0, 50) == pytest.approx((-bound, bound))
    same = paired_difference(np.ones(50), np.ones(50))
    assert (same.points, same.p_value) == (0.0, 1.0) and same.low == pytest.approx(-bound) and bound > 7


@pytest.mark.parametrize("n", [10, 30, 50])
def test_the_exact_interval_excludes_0_exactly_when_mcnemar_rejects(n):
    for a_only in range(n + 1):
        for b_only in range(n + 1 - a_only):
            low, high = exact_paired_interval(a_only, b_only, n)
            p = statsmodels_mcnemar(np.array([[0, a_only], [b_only, n - a_only - b_only]]), exact=True).pvalue
            assert (low > 0 or high < 0) == (p < 0.05), (a_only, b_only, low, high, p)
            assert low < high and low <= 100 * (a_only - b_only) / n <= high


@pytest.mark.parametrize("n, a_right, b_right", [(50, 0.2, 0.05), (50, 0.25, 0.25), (50, 0.15, 0.0)])
def test_the_exact_interval_covers_at_least_95_percent_in_simulation(n, a_right, b_right):
    """a alone right with probability a_right, b alone with b_right: the true difference is their difference."""
    counts = np.random.default_rng(7).multinomial(n, [a_right, b_right, 1 - a_right - b_right], size=2000)
    truth = 100 * (a_right - b_right)
    found = {}
    covered = 0
    for a_only, b_only, _ in counts:
        key = (int(a_only), int(b_only))
        found.setdefault(key, exact_paired_interval(*key, n))
        covered += found[key][0] <= truth <= found[key][1]
    assert covered / len(counts) >= 0.95


# ---------------------------------------------------------------- Holm
def test_holm_known_values_and_statsmodels():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.04]) == pytest.approx([0.04])  # one test: nothing to adjust
    rng = np.random.default_rng(0)
    for size in (2, 5, 12, 40):
        pvalues = rng.uniform(0, 0.2, size) ** 2
        assert holm(pvalues) == pytest.approx(multipletests(pvalues, method="holm")[1], abs=1e-12)


# ---------------------------------------------------------------- bootstrap: ties (B1), one interval-and-p rule
def test_tail_count_and_the_fewest_resamples():
    assert bootstrap.tail_count(10_000) == 249  # 2 * 250 / 10001 < 0.05 <= 2 * 251 / 10001
    assert bootstrap.tail_count(40) == 0 and bootstrap.minimum_resamples() == 40
    with pytest.raises(ValueError, match="at least 40"):
        bootstrap.tail_count(39)


def test_p_value_counts_a_zero_draw_on_both_sides():
    draws = np.array([0.0] * 30 + [1.0] * 70)
    assert bootstrap.p_value(draws) == pytest.approx(2 * (30 + 1) / 101)  # the zeros are no evidence either way
    assert bootstrap.p_value(np.ones(999)) == pytest.approx(2 / 1000)  # never 0


def test_interval_and_p_agree_on_every_side_of_the_boundary():
    rng = np.random.default_rng(3)
    for negatives in range(245, 255):  # around J = 249 of 10,000 draws on the far side, with and without ties
        for zeros in range(3):
            draws = np.concatenate([-rng.uniform(0.1, 1, negatives), np.zeros(zeros),
                                    rng.uniform(0.1, 1, 10_000 - negatives - zeros)])
            low, high, p = bootstrap.interval_and_p(draws)
            assert (low > 0 or high < 0) == (p < 0.05), (negatives, zeros, low, p)
            assert (low > 0) == (negatives + zeros <= 249)


def test_two_level_draws_are_exact_so_zero_differences_are_ties():
    """B1: float sums of per-task means turn exact zeros into +-1e-17 (0.1 + 0.2 - 0.3), which split between the
    tails and understate p. Three tasks of 10 questions: every draw is k / 30 of 100 points, k an integer."""
    rng = np.random.default_rng(5)
    a = [rng.integers(0, 2, (1, 10)) for _ in range(3)]
    b = [np.where(rng.random((1, 10)) < 0.2, 1 - x, x) for x in a]
    draws = bootstrap.two_level_draws(a, b, n_boot=5000, seed=2)
    k = np.rint(draws * 30 / 100)
    assert np.allclose(draws, k * 100 / 30, rtol=0, atol=1e-9)
    assert (draws[k == 0] == 0.0).all() and (k == 0).sum() > 100  # many exact ties, each exactly 0.0
    far = min((k <= 0).sum(), (k >= 0).sum())
    assert bootstrap.p_value(draws) == pytest.approx(2 * (far + 1) / 5001)


# ---------------------------------------------------------------- several seeds, averages, degenerate bootstraps
def test_two_level_interval_of_identical_seeds_is_the_question_bootstrap():
    row = np.array(_with_discordant(10, 2)[0], dtype=float)
    point, low, high = seed_question_interval([np.vstack([row, row, row])], n_boot=4000)
    assert point == pytest.approx(100 * row.mean())
    # seeds that agree add nothing: the spread is the questions' alone (normal approximation of the bootstrap)
    half = 1.96 * 100 * row.std() / math.sqrt(row.size)
    assert (high - low) / 2 == pytest.approx(half, rel=0.12)


def test_a_degenerate_cell_interval_falls_back_to_wilson():
    """gsm8k_cpu's 0 of 10 read '0.0 ±0.0': now the Wilson interval of the pooled answers, [0, 27.8]."""
    assert seed_question_interval([np.zeros((1, 10))]) == pytest.approx(
        (0.0, 0.0, 100 * proportion_confint(0, 10, method="wilson")[1]))
    both = seed_question_interval([np.zeros((2, 10)), np.ones((2, 10))])  # tasks: the mean of their bounds
    assert both == pytest.approx((50.0, 50 * proportion_confint(20, 20, method="wilson")[0],
                                  50 + 50 * proportion_confint(0, 20, method="wilson")[1]))


def test_two_level_interval_widens_with_seed_to_seed_spread():
    rng = np.random.default_rng(4)
    agreeing = np.tile(rng.integers(0, 2, 200), (4, 1)).astype(float)
    spread = agreeing.copy()
    spread[0], spread[1] = 1.0, 0.0  # two seeds at 100 % and 0 %: the seed level dominates
    narrow, wide = (seed_question_interval([m], n_boot=2000) for m in (agreeing, spread))
    assert wide[2] - wide[1] > 3 * (narrow[2] - narrow[1])


def test_two_level_difference_p_value_sign_and_its_degenerate_fallback():
    a, b = _with_discordant(20, 2)
    a, b = np.vstack([a, a]).astype(float), np.vstack([b, b]).astype(float)
    found = seed_question_difference([a], [b], n_boot=4000)
    assert found.points == pytest.approx(100 * 18 / 62) and found.low > 0 and found.p_value < 0.01
    assert seed_question_difference([b], [a], n_boot=4000).points == pytest.approx(-found.points)
    same = seed_question_difference([a], [a.copy()], True, n_boot=500)  # nothing differs: pooled exact McNemar
    bound = 100 * (1 - 0.025 ** (1 / a.size))
    assert (same.points, same.p_value, same.test.startswith("exact McNemar, pooled")) == (0.0, 1.0, True)
    assert (same.low, same.high) == pytest.approx((-bound, bound))
    with pytest.raises(ValueError):
        seed_question_difference([a], [b[:, :10]])
    with pytest.raises(ValueError):
        seed_question_difference([a], [b[:1]], paired_seeds=True)


def test_the_average_is_the_plain_mean_over_tasks_not_the_pooled_mean():
    small_a, small_b = np.ones((1, 10)), np.zeros((1, 10))
    large = np.zeros((1, 90))
    found = seed_question_difference([small_a, large], [small_b, large.copy()])
    assert found.points == 50.0 and found.n == 100  # (100 + 0) / 2, not the pooled 10 / 100


def test_clustered_score_difference_is_the_ratio_of_sums_and_never_zero_width():
    sums_a, counts_a = [16, 8, 9], [2, 2, 1]  # question 3: one turn unparsed
    sums_b, counts_b = [8, 8, 10], [2, 2, 2]
    found = clustered_score_difference(sums_a, counts_a, sums_b, counts_b, n_boot=2000)
    assert found.points == pytest.approx(33 / 5 - 26 / 6)  # mean over valid judgments, not over questions
    assert found.low <= found.points <= found.high and found.n == 3
    same = clustered_score_difference(sums_a, counts_a, sums_a, counts_a, n_boot=200)
    psi = 1 - 0.025 ** (1 / 3)  # 0 of 3 questions differ; one that did could move the mean by up to 9 points
    assert (same.points, same.p_value) == (0.0, 1.0) and (same.low, same.high) == pytest.approx((-9 * psi, 9 * psi))
    with pytest.raises(ValueError):
        clustered_score_difference([1], [0], [1], [1])
