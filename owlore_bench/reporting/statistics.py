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


def seed_question_interval(per_task: Sequence[np.ndarray], n_boot: int = N_BOOT, seed: int = 0,
                           confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(point, low, high) in points of one row's mean over tasks of accuracy, each task a seeds x questions 0/1
    matrix: the two-level bootstrap resamples seeds (the same seeds for every task: a seed's run scored them
    all), then questions within each task. One task of one seed: Wilson is the better interval (see cells)."""
    draws = _two_level_draws(per_task, None, n_boot, np.random.default_rng(seed))
    point = 100 * float(np.mean([matrix.mean() for matrix in per_task]))
    return (point, *_interval(draws, confidence))


def seed_question_difference(per_task_a: Sequence[np.ndarray], per_task_b: Sequence[np.ndarray],
                             n_boot: int = N_BOOT, seed: int = 0, confidence: float = CONFIDENCE) -> Difference:
    """a minus b of the mean over tasks of accuracy (points), each task a seeds x questions 0/1 matrix of both rows
    on the same questions. Two-level bootstrap: each row's seeds resampled on their own (seeds are not paired
    across methods), questions resampled jointly (paired). p: bootstrap_p_value, used where no exact test
    applies (several seeds, or an average of tasks)."""
    if len(per_task_a) != len(per_task_b) or not per_task_a:
        raise ValueError(f"{len(per_task_a)} tasks against {len(per_task_b)}")
    for a, b in zip(per_task_a, per_task_b):
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or a.shape[1] == 0:
            raise ValueError(f"seeds x questions matrices on the same questions needed (got {a.shape}, {b.shape})")
    draws = _two_level_draws(per_task_a, per_task_b, n_boot, np.random.default_rng(seed))
    point = 100 * float(np.mean([a.mean() - b.mean() for a, b in zip(per_task_a, per_task_b)]))
    low, high = _interval(draws, confidence)
    p_value = bootstrap_p_value(draws)
    return Difference(point, low, high, p_value, sum(int(a.shape[1]) for a in per_task_a))


def clustered_score_difference(sums_a: Sequence[float], counts_a: Sequence[int], sums_b: Sequence[float],
                               counts_b: Sequence[int], n_boot: int = N_BOOT, seed: int = 0,
                               confidence: float = CONFIDENCE) -> Difference:
    """a minus b of a mean score over judgments (MT-Bench's Overall: sum of scores / number of judgments), the
    judgments grouped by question (position k = question k: the sum and count of its turns' valid scores, over
    seeds). Paired bootstrap over questions: both rows' turns of a drawn question come along together.
    p: bootstrap_p_value (no exact test for 1-10 scores). Units: score points, not percent."""
    arrays = [np.asarray(x, dtype=float) for x in (sums_a, counts_a, sums_b, counts_b)]
    if len({x.shape for x in arrays}) != 1 or arrays[0].ndim != 1 or arrays[0].size == 0:
        raise ValueError("per-question sums and counts of both rows must be equally long non-empty vectors")
    if arrays[1].sum() == 0 or arrays[3].sum() == 0:
        raise ValueError("a row has no valid judgment")
    rng, draws = np.random.default_rng(seed), np.empty(n_boot)
    for start in range(0, n_boot, BATCH):
        size = min(BATCH, n_boot - start)
        index = rng.integers(0, arrays[0].size, size=(size, arrays[0].size))
        sa, ca, sb, cb = (x[index].sum(axis=1) for x in arrays)
        draws[start:start + size] = sa / np.maximum(ca, 1) - sb / np.maximum(cb, 1)
    point = float(arrays[0].sum() / arrays[1].sum() - arrays[2].sum() / arrays[3].sum())
    low, high = _interval(draws, confidence)
    p_value = bootstrap_p_value(draws)
    return Difference(point, low, high, p_value, int(arrays[0].size))


def bootstrap_p_value(draws: np.ndarray) -> float:
    """Two-sided bootstrap p-value of 'no difference': twice the share of draws on the far side of 0, counted as
    (k + 1) / (n_boot + 1) so that it is never 0 (Davison & Hinkley 1997, eq. 4.11), capped at 1."""
    far = min(int(np.sum(draws <= 0)), int(np.sum(draws >= 0)))
    return min(1.0, 2 * (far + 1) / (draws.size + 1))


def _two_level_draws(per_task_a: Sequence[np.ndarray], per_task_b: Sequence[np.ndarray] | None, n_boot: int,
                     rng: np.random.Generator) -> np.ndarray:
    """n_boot draws (points) of mean-over-tasks accuracy of a (minus b's, when given): seeds resampled per row
    (the same draw for all tasks of a row), then questions per task (the same draw for a and b: paired)."""
    draws = np.zeros(n_boot)
    for start in range(0, n_boot, BATCH):
        size = min(BATCH, n_boot - start)
        picks = [rng.integers(0, rows[0].shape[0], size=(size, rows[0].shape[0]))
                 for rows in (per_task_a, per_task_b) if rows is not None]
        for t, a in enumerate(per_task_a):
            questions = rng.integers(0, a.shape[1], size=(size, a.shape[1]))
            batch = np.arange(size)[:, None]
            total = a[picks[0]].mean(axis=1)[batch, questions].mean(axis=1)  # a[seeds] is size x S x n
            if per_task_b is not None:
                total -= per_task_b[t][picks[1]].mean(axis=1)[batch, questions].mean(axis=1)
            draws[start:start + size] += total
    return 100 * draws / len(per_task_a)


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
