"""Decisions, not just numbers: intervals and paired tests on per-question outcomes (0/1 per question).

A table cell of n = 50 questions has a 95% interval about ±13 points wide, so two methods' cells say little by
themselves; the same questions answered by both runs do. Everything here is scipy's (binomtest for the Wilson
interval and the exact McNemar test) or a seeded numpy bootstrap over question indices; only Holm's adjustment is
written out, because scipy has none and statsmodels (which has it) is not a dependency.
Differences and their intervals are in points (100 x a difference of proportions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
N_BOOT = 10_000
BATCH = 1_000  # bootstrap resamples drawn at once: memory BATCH x n indices, not n_boot x n


@dataclass(frozen=True)
class Difference:
    """a minus b in points, its bootstrap interval, and (per task) the exact McNemar p-value."""
    points: float
    low: float
    high: float
    p_value: float | None  # None for the average over tasks (no single paired test)
    n: int  # questions (summed over tasks for the average)
    a_only: int = 0  # questions a answers correctly and b does not (the discordant pairs)
    b_only: int = 0


def wilson_interval(correct: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval (no continuity correction) of `correct` out of `n`, as proportions."""
    if n < 1 or not 0 <= correct <= n:
        raise ValueError(f"wilson_interval: need 0 <= correct <= n and n >= 1 (got {correct} of {n})")
    interval = stats.binomtest(int(correct), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Exact (binomial) McNemar p-value, two-sided: under 'no difference' each discordant question is equally
    likely to favour either run. 1.0 when there is no discordant question."""
    discordant = a_only + b_only
    if discordant == 0:
        return 1.0
    return float(stats.binomtest(a_only, discordant, p=0.5, alternative="two-sided").pvalue)


def paired_difference(a: Sequence[int], b: Sequence[int], n_boot: int = N_BOOT, seed: int = 0,
                      confidence: float = CONFIDENCE) -> Difference:
    """100 * (mean a - mean b) of two runs' 0/1 outcomes on the same questions (position k = question k), with a
    paired percentile bootstrap interval (question indices resampled, both runs' outcomes kept together) and the
    exact McNemar p-value of the discordant counts."""
    a, b = _pair(a, b)
    a_only, b_only = int(np.sum((a == 1) & (b == 0))), int(np.sum((a == 0) & (b == 1)))
    draws = 100 * _bootstrap_means(a - b, n_boot, np.random.default_rng(seed))
    low, high = _interval(draws, confidence)
    return Difference(float(100 * (a.mean() - b.mean())), low, high, mcnemar_exact(a_only, b_only), int(a.size),
                      a_only, b_only)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the given order (family-wise error control over tasks).

    Written here because scipy.stats has no Holm (its false_discovery_control is Benjamini-Hochberg) and
    statsmodels' multipletests(method='holm') is not installed: the k-th smallest of m p-values is multiplied by
    m - k (k from 0), then a running maximum keeps the order, capped at 1."""
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((p.size - np.arange(p.size)) * p[order])
    adjusted = np.empty(p.size)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted.tolist()


def stratified_average_difference(per_task_a: Mapping[str, Sequence[int]] | Sequence[Sequence[int]],
                                  per_task_b: Mapping[str, Sequence[int]] | Sequence[Sequence[int]],
                                  n_boot: int = N_BOOT, seed: int = 0, confidence: float = CONFIDENCE) -> Difference:
    """The Avg column's difference: mean over tasks of each task's accuracy, a minus b, in points. Its bootstrap
    resamples questions within each task (every task keeps its size and its weight 1/tasks in the average)."""
    pairs = [_pair(a, b) for a, b in _matched_tasks(per_task_a, per_task_b)]
    rng = np.random.default_rng(seed)
    point, draws = 0.0, np.zeros(n_boot)
    for a, b in pairs:
        point += a.mean() - b.mean()
        draws += _bootstrap_means(a - b, n_boot, rng)
    low, high = _interval(100 * draws / len(pairs), confidence)
    return Difference(float(100 * point / len(pairs)), low, high, None, sum(int(a.size) for a, _ in pairs))


def _matched_tasks(per_task_a, per_task_b) -> list[tuple[Sequence[int], Sequence[int]]]:
    if isinstance(per_task_a, Mapping) and isinstance(per_task_b, Mapping):
        if set(per_task_a) != set(per_task_b):
            raise ValueError(f"tasks differ: {sorted(set(per_task_a) ^ set(per_task_b))}")
        matched = [(per_task_a[task], per_task_b[task]) for task in per_task_a]
    else:
        if len(per_task_a) != len(per_task_b):
            raise ValueError(f"{len(per_task_a)} tasks against {len(per_task_b)}")
        matched = list(zip(per_task_a, per_task_b))
    if not matched:
        raise ValueError("no tasks to average")
    return matched


def _pair(a: Sequence[int], b: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Two equally long non-empty 0/1 vectors as float arrays."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired outcomes need two equally long non-empty vectors (got {a.shape} and {b.shape})")
    if not np.isin(a, (0.0, 1.0)).all() or not np.isin(b, (0.0, 1.0)).all():
        raise ValueError("paired outcomes must be 0/1 per question")
    return a, b


def _bootstrap_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """`n_boot` means of `values` over resamples of its indices with replacement."""
    means = np.empty(n_boot)
    for start in range(0, n_boot, BATCH):
        size = min(BATCH, n_boot - start)
        means[start:start + size] = values[rng.integers(0, values.size, size=(size, values.size))].mean(axis=1)
    return means


def _interval(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    """The percentile interval of bootstrap draws."""
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(low), float(high)
