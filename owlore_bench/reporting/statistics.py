"""Decisions, not just numbers: intervals and paired tests on per-question outcomes (0/1 per question).

A table cell of n = 50 questions has a 95 % interval about +-13 points wide, so two methods' cells say little by
themselves; the same questions answered by both runs do. Each difference takes its interval and its p-value from
one method, so that the interval excludes 0 exactly when p < 0.05:

- one task, one seed each: the exact McNemar test and `exact_paired_interval`, the range of the difference over
  the exact (Clopper-Pearson) region of the two numbers that McNemar's design has (the share of questions the
  runs disagree on, and the share of those that favour a);
- several seeds, or the average over tasks: the two-level bootstrap (seeds, then questions; bootstrap.py), its
  percentile interval and bootstrap p read off the same draws. Where it degenerates (every draw the same, so a
  zero-width interval), the exact McNemar test and interval of the pooled (seed, question) pairs stand in.

Differences and their intervals are in points (100 x a difference of proportions). scipy's binomtest gives the
Wilson, Clopper-Pearson and McNemar figures; Holm's adjustment is written out (see `holm`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from owlore_bench.reporting import bootstrap
from owlore_bench.reporting.bootstrap import BATCH, CONFIDENCE, N_BOOT, p_value  # noqa: F401  (re-exported)

EXACT = "exact McNemar"
BOOTSTRAP = "bootstrap, seeds then questions"
POOLED = "exact McNemar, pooled (seed, question) pairs (bootstrap degenerate)"


@dataclass(frozen=True)
class Difference:
    """a minus b in points, its 95 % interval and its two-sided p-value (from the same method: `test`)."""
    points: float
    low: float
    high: float
    p_value: float
    n: int  # paired observations: questions (x seeds when pooled; summed over tasks for an average)
    a_only: int = 0  # (seed, question) pairs a answers correctly and b does not (the discordant pairs)
    b_only: int = 0
    test: str = EXACT


def wilson_interval(correct: float, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval (no continuity correction) of `correct` out of `n`, as proportions."""
    if n < 1 or not 0 <= correct <= n:
        raise ValueError(f"wilson_interval: need 0 <= correct <= n and n >= 1 (got {correct} of {n})")
    interval = stats.binomtest(int(correct), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


def clopper_pearson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a proportion, k of n, from its beta-quantile form (what
    binomtest(...).proportion_ci(method='exact') solves for by root-finding, at a hundredth of the cost);
    (0, 1) when n is 0 (nothing observed)."""
    if n == 0:
        return 0.0, 1.0
    tail = (1 - confidence) / 2
    low = 0.0 if k == 0 else float(stats.beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - tail, k + 1, n - k))
    return low, high


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Exact (binomial) McNemar p-value, two-sided: under 'no difference' each discordant question is equally
    likely to favour either run. 1.0 when there is no discordant question."""
    discordant = a_only + b_only
    if discordant == 0:
        return 1.0
    return float(stats.binomtest(a_only, discordant, p=0.5, alternative="two-sided").pvalue)


def exact_paired_interval(a_only: int, b_only: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The interval (points) of a - b matching the exact McNemar test. The difference is psi (2 pi - 1): psi the
    share of questions the runs disagree on, pi the share of those a gets right. pi's Clopper-Pearson interval
    is the one the exact McNemar test inverts, so it holds 1/2 exactly when p >= 1 - confidence; psi's
    Clopper-Pearson interval over the n questions adds its own uncertainty (never zero: even 0 disagreements in
    n questions leave room for some). The interval is the range of psi (2 pi - 1) over both; it contains 0 exactly
    when McNemar's p >= 1 - confidence. Coverage: at least 1 - 2 alpha by Bonferroni; 96.6-100 % in the seeded
    simulation of benchmarks/coverage_paired_interval.py (n = 20, 50, 100; figures in docs/evaluation.md)."""
    psi_low, psi_high = clopper_pearson(a_only + b_only, n, confidence)
    pi_low, pi_high = clopper_pearson(a_only, a_only + b_only, confidence)
    low = (psi_high if pi_low < 0.5 else psi_low) * (2 * pi_low - 1)
    high = (psi_high if pi_high > 0.5 else psi_low) * (2 * pi_high - 1)
    return 100 * low, 100 * high


def paired_difference(a: Sequence[int], b: Sequence[int], confidence: float = CONFIDENCE) -> Difference:
    """100 * (mean a - mean b) of two 0/1 outcome vectors on the same pairs (position k = pair k), with the exact
    McNemar p-value of the discordant counts and its matching interval (exact_paired_interval)."""
    a, b = _pair(a, b)
    a_only, b_only = int(np.sum((a == 1) & (b == 0))), int(np.sum((a == 0) & (b == 1)))
    low, high = exact_paired_interval(a_only, b_only, int(a.size), confidence)
    return Difference(float(100 * (a.mean() - b.mean())), low, high, mcnemar_exact(a_only, b_only), int(a.size),
                      a_only, b_only, EXACT)


def seed_question_difference(per_task_a: Sequence[np.ndarray], per_task_b: Sequence[np.ndarray],
                             paired_seeds: bool = False, n_boot: int = N_BOOT, seed: int = 0,
                             confidence: float = CONFIDENCE) -> Difference:
    """a minus b of the mean over tasks of accuracy (points), each task a seeds x questions 0/1 matrix of both
    rows on the same questions. Two-level bootstrap (bootstrap.two_level_draws; `paired_seeds`: seed s of a goes
    with seed s of b), interval and p from the same draws. A degenerate bootstrap (zero width) gives way to the
    exact McNemar test and interval of all (seed, question) pairs pooled (test POOLED)."""
    _check_matrices(per_task_a, per_task_b, paired_seeds)
    point = 100 * float(np.mean([a.mean() - b.mean() for a, b in zip(per_task_a, per_task_b)]))
    draws = bootstrap.two_level_draws(per_task_a, per_task_b, paired_seeds, n_boot, seed)
    low, high, p = bootstrap.interval_and_p(draws, confidence)
    a_only, b_only, pairs = _discordant(per_task_a, per_task_b)
    n = sum(int(a.shape[1]) for a in per_task_a)
    if low == high:
        low, high = exact_paired_interval(a_only, b_only, pairs, confidence)
        return Difference(point, low, high, mcnemar_exact(a_only, b_only), n, a_only, b_only, POOLED)
    return Difference(point, low, high, p, n, a_only, b_only, BOOTSTRAP)


def _discordant(per_task_a: Sequence[np.ndarray], per_task_b: Sequence[np.ndarray]) -> tuple[int, int, int]:
    """(a right and b wrong, the reverse, pairs) over every task's (seed, question) pairs, seed s of a with seed
    s of b (as many seeds as the smaller side has)."""
    a_only = b_only = pairs = 0
    for a, b in zip(per_task_a, per_task_b):
        seeds = min(a.shape[0], b.shape[0])
        a, b = a[:seeds], b[:seeds]
        a_only += int(np.sum((a == 1) & (b == 0)))
        b_only += int(np.sum((a == 0) & (b == 1)))
        pairs += int(a.size)
    return a_only, b_only, pairs


def seed_question_interval(per_task: Sequence[np.ndarray], n_boot: int = N_BOOT, seed: int = 0,
                           confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(point, low, high) in points of one row's mean over tasks of accuracy, each task a seeds x questions 0/1
    matrix: the two-level bootstrap's percentile interval. Where it degenerates (every draw the same: no answer
    varies), the mean over tasks of each task's Wilson bounds over its pooled (seed, question) answers, a
    conservative stand-in (it treats the tasks' errors as perfectly correlated)."""
    point = 100 * float(np.mean([matrix.mean() for matrix in per_task]))
    low, high, _ = bootstrap.interval_and_p(bootstrap.two_level_draws(per_task, None, False, n_boot, seed),
                                            confidence)
    if low == high:
        bounds = np.array([wilson_interval(int(matrix.sum()), int(matrix.size), confidence) for matrix in per_task])
        low, high = 100 * bounds.mean(axis=0)
    return point, float(low), float(high)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the given order (family-wise error control over the family): the
    k-th smallest of m p-values is multiplied by m - k (k from 0), then a running maximum keeps the order, capped
    at 1. Equal to statsmodels' multipletests(method='holm') (a test checks), written out because importing
    statsmodels costs every `owlore-bench report` about 2 s for these six lines."""
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((p.size - np.arange(p.size)) * p[order])
    adjusted = np.empty(p.size)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted.tolist()


def _check_matrices(per_task_a: Sequence[np.ndarray], per_task_b: Sequence[np.ndarray], paired_seeds: bool) -> None:
    if len(per_task_a) != len(per_task_b) or not per_task_a:
        raise ValueError(f"{len(per_task_a)} tasks against {len(per_task_b)}")
    for a, b in zip(per_task_a, per_task_b):
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or a.shape[1] == 0:
            raise ValueError(f"seeds x questions matrices on the same questions needed (got {a.shape}, {b.shape})")
        if paired_seeds and a.shape[0] != b.shape[0]:
            raise ValueError(f"paired seeds need as many seeds on both sides (got {a.shape[0]} and {b.shape[0]})")


def _pair(a: Sequence[int], b: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Two equally long non-empty 0/1 vectors as float arrays."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired outcomes need two equally long non-empty vectors (got {a.shape} and {b.shape})")
    if not np.isin(a, (0.0, 1.0)).all() or not np.isin(b, (0.0, 1.0)).all():
        raise ValueError("paired outcomes must be 0/1 per question")
    return a, b
