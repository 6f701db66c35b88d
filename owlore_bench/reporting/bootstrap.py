"""Every bootstrap of the report in one place: the draws, and the interval and p-value read off the same draws.

Two resampling schemes:
- `paired_draws`: scipy.stats.bootstrap(paired=True, vectorized=True): questions drawn with replacement, the k-th
  entry of every array coming along with question k (MT-Bench: a drawn question brings all of its judgments).
- `two_level_draws`: seeds, then questions within each task (scipy has no hierarchical bootstrap). Written here
  for that reason. Its draws are exact: each is an integer count over a common denominator, so a draw that is
  0 in exact arithmetic is exactly 0.0, never +-1e-17 (a float sum of means would split such ties between the
  tails and understate p).

`interval_and_p` reads the interval and the two-sided p-value off the same order statistics of the draws, so an
interval excludes 0 exactly when p < 1 - confidence: the two cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
N_BOOT = 10_000
BATCH = 1_000  # resamples drawn at once: memory BATCH x questions (x seeds), not n_boot x questions


def tail_count(n_boot: int, confidence: float = CONFIDENCE) -> int:
    """J: the largest number of draws on the far side of 0 that still gives p < 1 - confidence, i.e. the largest
    j with 2 (j + 1) / (n_boot + 1) < alpha. The interval is then the (J+1)-th smallest to the (J+1)-th largest
    draw (the percentile interval of Davison & Hinkley 1997, section 5.2). At least 0: n_boot >= 2 / alpha."""
    alpha = Fraction(str(round(1 - confidence, 12)))
    limit = alpha * (n_boot + 1) / 2  # j + 1 < limit
    j = math.ceil(limit) - 2
    if j < 0:
        raise ValueError(f"n_boot: at least {minimum_resamples(confidence)} resamples for a {100 * confidence:g} % "
                         f"interval (got {n_boot})")
    return j


def minimum_resamples(confidence: float = CONFIDENCE) -> int:
    """The fewest resamples whose interval can exclude 0 (tail_count >= 0)."""
    alpha = Fraction(str(round(1 - confidence, 12)))
    return math.floor(2 / alpha)


def p_value(draws: np.ndarray) -> float:
    """Two-sided bootstrap p-value of 'no difference': twice the share of draws on the far side of 0, counted as
    (k + 1) / (n_boot + 1) so that it is never 0 (Davison & Hinkley 1997, eq. 4.11), capped at 1. A draw equal to
    0 counts on both sides (a tie is no evidence either way)."""
    far = min(int(np.sum(draws <= 0)), int(np.sum(draws >= 0)))
    return min(1.0, 2 * (far + 1) / (draws.size + 1))


def interval_and_p(draws: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(low, high, p) from one set of draws: low and high are the (J+1)-th smallest and largest draw (J =
    tail_count), so 0 lies outside [low, high] exactly when p < 1 - confidence."""
    ordered = np.sort(np.asarray(draws, dtype=float))
    j = tail_count(ordered.size, confidence)
    return float(ordered[j]), float(ordered[ordered.size - 1 - j]), p_value(ordered)


def paired_draws(arrays: Sequence[np.ndarray], statistic: Callable[..., np.ndarray], n_boot: int = N_BOOT,
                 seed: int = 0) -> np.ndarray:
    """`n_boot` values of statistic(*arrays, axis=-1) over resamples of the questions (position k of every array
    is question k), from scipy.stats.bootstrap (paired, vectorized, seeded)."""
    result = stats.bootstrap(tuple(np.asarray(x, dtype=float) for x in arrays), statistic, paired=True,
                             vectorized=True, n_resamples=n_boot, batch=BATCH, method="percentile",
                             rng=np.random.default_rng(seed))
    return np.asarray(result.bootstrap_distribution, dtype=float)


def two_level_draws(per_task_a: Sequence[np.ndarray], per_task_b: Sequence[np.ndarray] | None = None,
                    paired_seeds: bool = False, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """`n_boot` draws, in points, of the mean over tasks of a's accuracy (minus b's when given), each task a
    seeds x questions 0/1 matrix (b's on the same questions). Seeds are drawn first, the same draw for every task
    of a row (a seed's run answered them all); with `paired_seeds` b takes a's draw (seed s of a was trained with
    seed s of b), else its own. Then each task's questions are drawn, the same draw for a and b (paired)."""
    rows = [_int_matrices(per_task_a)] + ([_int_matrices(per_task_b)] if per_task_b is not None else [])
    seeds = [matrices[0].shape[0] for matrices in rows]
    if paired_seeds and len(set(seeds)) != 1:
        raise ValueError(f"paired seeds need as many seeds on both sides (got {seeds})")
    sizes = [matrix.shape[1] for matrix in rows[0]]
    common = math.lcm(*sizes)
    weights = [common // size for size in sizes]  # each task's count, over a common denominator
    scale = [math.prod(seeds) // count for count in seeds]  # a's count x b's seeds, b's count x a's seeds
    denominator = len(sizes) * math.prod(seeds) * common
    exact_type = np.int64 if denominator < 2**62 else object  # object: Python integers, never overflow
    rng, draws = np.random.default_rng(seed), np.empty(n_boot)
    for start in range(0, n_boot, BATCH):
        size = min(BATCH, n_boot - start)
        picks = [_seed_picks(rng, seeds[0], size)]
        if len(rows) == 2:
            picks.append(picks[0] if paired_seeds else _seed_picks(rng, seeds[1], size))
        numerator = np.zeros(size, dtype=exact_type)
        for task, n in enumerate(sizes):
            questions = rng.integers(0, n, size=(size, n))
            for side, (matrices, pick) in enumerate(zip(rows, picks)):
                count = _resampled_count(matrices[task], pick, questions).astype(exact_type)
                numerator += (1 if side == 0 else -1) * count * (scale[side] * weights[task])
        draws[start:start + size] = 100 * (numerator / denominator).astype(float)  # 0 stays exactly 0
    return draws


def _seed_picks(rng: np.random.Generator, seeds: int, size: int) -> np.ndarray:
    """`size` draws of `seeds` seed indices; one seed draws nothing from `rng`, so one-seed rows get the same
    question draws whether their seeds count as paired or not."""
    return rng.integers(0, seeds, size=(size, seeds)) if seeds > 1 else np.zeros((size, 1), dtype=np.int64)


def _int_matrices(matrices: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [np.asarray(matrix).astype(np.int64) for matrix in matrices]


def _resampled_count(matrix: np.ndarray, seed_picks: np.ndarray, question_picks: np.ndarray) -> np.ndarray:
    """Correct answers over the drawn seeds and questions: one integer per resample."""
    per_question = matrix[seed_picks].sum(axis=1)  # resamples x questions: summed over the drawn seeds
    return np.take_along_axis(per_question, question_picks, axis=1).sum(axis=1)
