"""Intervals and paired differences of MT-Bench scores (judge scores 1-10), whose judgments come in clusters: a
question's turns (and seeds) are judged together, so a bootstrap draws whole questions (bootstrap.paired_draws).

Where such a bootstrap degenerates (every question scores alike, so every draw is the same and the interval has
zero width), `degenerate_bounds` stands in: the Clopper-Pearson upper bound on the share of questions that could
score otherwise, none of n having done so, times the most such a question can move the mean (to 1 or to 10).
Units: score points.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from owlore_bench.reporting import bootstrap
from owlore_bench.reporting.statistics import Difference, clopper_pearson

LOWEST, HIGHEST = 1.0, 10.0  # MT-Bench's rating scale
SCORE_TEST = "bootstrap over questions"
SCORE_FALLBACK = "bootstrap degenerate: exact bound on the questions that could differ"


def degenerate_bounds(value: float, questions: int, lowest: float, highest: float,
                      confidence: float = bootstrap.CONFIDENCE) -> tuple[float, float]:
    """[low, high] of a mean over questions that all agreed: with 0 of n questions otherwise, at most a share
    psi (Clopper-Pearson upper bound) of unseen questions would be, each moving the mean at most to `lowest` or
    `highest`."""
    psi = clopper_pearson(0, questions, confidence)[1]
    return value - psi * (value - lowest), value + psi * (highest - value)


def clustered_mean_interval(sums: Sequence[float], counts: Sequence[int], n_boot: int = bootstrap.N_BOOT,
                            seed: int = 0, confidence: float = bootstrap.CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval (score points) of a mean over judgments, sum(sums) / sum(counts), the
    judgments clustered by question (position k = question k: the sum and count of its valid scores); every
    count must be >= 1. A degenerate bootstrap gives degenerate_bounds."""
    sums_array, counts_array = np.asarray(sums, dtype=float), np.asarray(counts, dtype=float)
    if sums_array.shape != counts_array.shape or sums_array.ndim != 1 or not (counts_array >= 1).all():
        raise ValueError("clustered_mean_interval: equally long sums and counts, every count >= 1")
    draws = bootstrap.paired_draws((sums_array, counts_array), _ratio, n_boot, seed)
    low, high, _ = bootstrap.interval_and_p(draws, confidence)
    if low == high:
        return degenerate_bounds(low, sums_array.size, LOWEST, HIGHEST, confidence)
    return low, high


def clustered_score_difference(sums_a: Sequence[float], counts_a: Sequence[int], sums_b: Sequence[float],
                               counts_b: Sequence[int], n_boot: int = bootstrap.N_BOOT, seed: int = 0,
                               confidence: float = bootstrap.CONFIDENCE) -> Difference:
    """a minus b of a mean score over judgments (MT-Bench's Overall: sum of scores / number of judgments), the
    judgments grouped by question (position k = question k: the sum and count of its turns' valid scores, over
    seeds). Paired bootstrap over questions (both rows' turns of a drawn question come along together); interval
    and p from the same draws. A degenerate bootstrap (every question's difference alike): the interval of
    degenerate_bounds (a difference moves at most 9 points a question) and p = 1 where it holds 0."""
    arrays = [np.asarray(x, dtype=float) for x in (sums_a, counts_a, sums_b, counts_b)]
    if len({x.shape for x in arrays}) != 1 or arrays[0].ndim != 1 or arrays[0].size == 0:
        raise ValueError("per-question sums and counts of both rows must be equally long non-empty vectors")
    if arrays[1].sum() == 0 or arrays[3].sum() == 0:
        raise ValueError("a row has no valid judgment")
    point = float(arrays[0].sum() / arrays[1].sum() - arrays[2].sum() / arrays[3].sum())
    if arrays[0].size == 1:
        draws = np.full(max(n_boot, 1), point)
    else:
        draws = bootstrap.paired_draws(arrays, _difference, n_boot, seed)
    low, high, p = bootstrap.interval_and_p(draws, confidence)
    if low != high:
        return Difference(point, low, high, p, int(arrays[0].size), test=SCORE_TEST)
    span = HIGHEST - LOWEST  # the most one question's difference can be, either way
    low, high = degenerate_bounds(point, int(arrays[0].size), -span, span, confidence)
    return Difference(point, low, high, 1.0 if low <= 0 <= high else p, int(arrays[0].size), test=SCORE_FALLBACK)


def _ratio(sums: np.ndarray, counts: np.ndarray, axis: int = -1) -> np.ndarray:
    return sums.sum(axis=axis) / counts.sum(axis=axis)


def _difference(sa: np.ndarray, ca: np.ndarray, sb: np.ndarray, cb: np.ndarray, axis: int = -1) -> np.ndarray:
    return sa.sum(axis=axis) / np.maximum(ca.sum(axis=axis), 1) - sb.sum(axis=axis) / np.maximum(cb.sum(axis=axis), 1)
