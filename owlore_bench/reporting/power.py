"""How many questions a paired comparison needs: power of the McNemar test for two runs on the same questions.

Two runs answer the same n questions; a question is discordant when exactly one of them is right. With
discordance psi (the share of discordant questions) and a true difference delta = p_a - p_b (proportions), the
McNemar test's power and sample size follow Connor (1987), "Sample size for testing differences in proportions
for the paired-sample design", Biometrics 43:207-211 (the normal approximation that sample-size tables use):

    n = (z_{1-alpha/2} sqrt(psi) + z_{power} sqrt(psi - delta^2))^2 / delta^2.

Written out because neither scipy nor statsmodels has a McNemar power function (statsmodels' power classes cover
t, z, F and chi-square designs, not paired proportions); the quantiles are scipy's and the inversion for the
smallest detectable difference is scipy's brentq. The exact McNemar test that the reports use is slightly more
conservative than this approximation at small n (tests/test_power.py simulates it).

Differences are proportions here (0.02 = 2 points); callers convert.
"""

from __future__ import annotations

import math

from scipy import optimize, stats

ALPHA = 0.05
POWER = 0.80
CHANCE_DISCORDANCE = 0.5  # two runs at 50 % accuracy that err independently disagree on half the questions


def independent_discordance(accuracy: float, delta: float) -> float:
    """psi of two runs at accuracies `accuracy` and `accuracy + delta` that err independently of each other. An
    assumption, not a bound: runs whose errors are positively correlated (fine-tuned variants of one base model,
    mostly) disagree less, runs with negatively correlated errors more, up to max_discordance. Measure it
    (`owlore-bench power --pilot RUN_A RUN_B`)."""
    other = accuracy + delta
    return accuracy * (1 - other) + other * (1 - accuracy)


def max_discordance(accuracy: float, delta: float) -> float:
    """The largest psi two runs at accuracies `accuracy` and `accuracy + delta` can have (every question one of
    them gets right, the other gets wrong, as far as their accuracies allow): min(p_a + p_b, 2 - p_a - p_b). The
    true upper bound, and so the worst case for a sample size (n grows with psi)."""
    other = accuracy + delta
    return min(accuracy + other, 2 - accuracy - other)


def mcnemar_power(n: float, delta: float, discordance: float, alpha: float = ALPHA) -> float:
    """Power (0..1) of the two-sided McNemar test at level `alpha` on n questions (Connor 1987; the far tail,
    below alpha/2, is left out as is usual)."""
    delta = abs(delta)
    _check(delta, discordance)
    z = stats.norm.ppf(1 - alpha / 2)
    return float(stats.norm.cdf((delta * math.sqrt(n) - z * math.sqrt(discordance))
                                / math.sqrt(discordance - delta**2)))


def mcnemar_sample_size(delta: float, discordance: float, alpha: float = ALPHA, power: float = POWER) -> int:
    """Questions (rounded up) for the McNemar test to detect `delta` with `power` (Connor 1987)."""
    delta = abs(delta)
    _check(delta, discordance)
    z_alpha, z_power = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    n = (z_alpha * math.sqrt(discordance) + z_power * math.sqrt(discordance - delta**2)) ** 2 / delta**2
    return math.ceil(n - 1e-9)  # a whole question more only when the formula is not already whole


def seeds_sample_size(delta: float, seed_std: float, alpha: float = ALPHA, power: float = POWER) -> int:
    """Training seeds (rounded up, at least 2) to detect a mean difference `delta` when the seed is the unit and
    per-seed differences spread with standard deviation `seed_std` (same unit as delta): the normal approximation
    n = ((z_{1-alpha/2} + z_power) * seed_std / delta)^2 that sizes a paired design by its unit's variance. It
    covers what McNemar's count of (seed, question) pairs assumes away: seeds that disagree."""
    if delta == 0 or seed_std <= 0:
        raise ValueError("seeds_sample_size: needs a nonzero difference and a positive between-seed spread")
    z_alpha, z_power = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    return max(2, math.ceil(((z_alpha + z_power) * seed_std / abs(delta)) ** 2 - 1e-9))


def smallest_detectable_difference(n: int, discordance: float | None = None, accuracy: float | None = None,
                                   alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest |delta| (proportion) that n questions detect with `power`: for a fixed discordance, or for
    independent errors at `accuracy` (discordance then grows with delta); one of the two must be given."""
    if discordance is None and accuracy is None:
        raise ValueError("smallest_detectable_difference: give discordance or accuracy")

    def shortfall(delta: float) -> float:
        psi = discordance if discordance is not None else independent_discordance(accuracy, delta)
        return mcnemar_power(n, delta, psi, alpha) - power

    upper = discordance if discordance is not None else 1 - accuracy
    upper = upper * (1 - 1e-9)
    if shortfall(upper) < 0:  # even the largest difference this discordance allows is not detected
        return math.nan
    return float(optimize.brentq(shortfall, 1e-9, upper, xtol=1e-10))


def _check(delta: float, discordance: float) -> None:
    if not 0 < discordance <= 1:
        raise ValueError(f"discordance must be in (0, 1] (got {discordance})")
    if not 0 < delta < discordance:
        raise ValueError(f"need 0 < |delta| < discordance: every changed answer is a discordant question "
                         f"(got delta {delta}, discordance {discordance})")
