"""`owlore-bench power --pilot RUN_A RUN_B`: the discordance two real runs have, measured from their paired
per-question outcomes, and the sample size it implies (reporting/power.py).

A pilot is two run folders, or two label folders whose seeds pair (reporting/pairs.py). Per task it counts the
(seed, question) pairs each run alone gets right; their share is the measured discordance psi, the number the
McNemar design needs and that independent-error guesses get wrong in both directions. With two or more paired
seeds it also takes the seed as the unit: each seed's Δ, their spread, and the seeds a difference needs, which
McNemar's count (it assumes the seeds agree) understates when a seed swings the other way.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from owlore_bench.reporting import power
from owlore_bench.reporting.pairs import Comparison, compared_tasks, seed_matrices


@dataclass(frozen=True)
class Measured:
    """One task (or all tasks pooled) of a pilot: pairs (seeds x questions), accuracies and discordant counts."""

    task: str
    pairs: int
    seeds: int
    accuracy_a: float  # proportions
    accuracy_b: float
    a_only: int
    b_only: int
    seed_deltas: tuple[float, ...] = ()  # a - b of each paired seed, proportion

    @property
    def seed_std(self) -> float | None:
        """Sample standard deviation of the per-seed Δ (proportion); None with fewer than 2 seeds."""
        return statistics.stdev(self.seed_deltas) if len(self.seed_deltas) >= 2 else None

    @property
    def discordance(self) -> float:
        return (self.a_only + self.b_only) / self.pairs

    @property
    def delta(self) -> float:
        """a - b, proportion."""
        return (self.a_only - self.b_only) / self.pairs


def measure(comparison: Comparison, tasks: list[str] | None, metric: str) -> list[Measured]:
    """Per task of the pilot, then 'all tasks' pooled (every task's pairs together)."""
    measured = []
    for task in compared_tasks(comparison.pairs, tasks):
        a, b = seed_matrices(comparison, task, metric)
        measured.append(Measured(task, int(a.size), int(a.shape[0]), float(a.mean()), float(b.mean()),
                                 int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum()),
                                 tuple(float(d) for d in (a - b).mean(axis=1))))
    pairs = sum(m.pairs for m in measured)
    per_seed = [m.pairs // m.seeds for m in measured]  # questions of each task
    pooled = tuple(sum(m.seed_deltas[k] * n for m, n in zip(measured, per_seed)) / sum(per_seed)
                   for k in range(measured[0].seeds))
    measured.append(Measured("all tasks", pairs, measured[0].seeds,
                             sum(m.accuracy_a * m.pairs for m in measured) / pairs,
                             sum(m.accuracy_b * m.pairs for m in measured) / pairs,
                             sum(m.a_only for m in measured), sum(m.b_only for m in measured), pooled))
    return measured


def needed_pairs(measured: Measured, delta: float | None, alpha: float, target: float) -> int | None:
    """(seed, question) pairs for the McNemar design to detect |delta| (proportion; default: the pilot's own
    difference) at the pilot's discordance; None where that is impossible (no discordance, or |delta| >= psi)."""
    delta = abs(measured.delta if delta is None else delta)
    if delta == 0 or delta >= measured.discordance:
        return None
    return power.mcnemar_sample_size(delta, measured.discordance, alpha, target)


def pilot_lines(measured: list[Measured], datasets: int, delta: float | None = None, alpha: float = power.ALPHA,
                target: float = power.POWER) -> list[str]:
    """The table `power --pilot` prints: per task the measured figures and the pairs needed at alpha, and at
    alpha / datasets (what the first step of Holm over that many datasets asks)."""
    strict = alpha / max(datasets, 1)
    header = (f"{'task':<24} {'pairs':>6} {'A %':>6} {'B %':>6} {'Δ pts':>7} {'A only':>6} {'B only':>6} "
              f"{'psi':>6} {'needed':>8} {f'at α/{datasets}':>9}")
    lines = [header]
    for m in measured:
        found = [needed_pairs(m, delta, level, target) for level in (alpha, strict)]
        shown = [f"{n:>8,}" if n is not None else f"{'—':>8}" for n in found]
        lines.append(f"{m.task:<24} {m.pairs:>6} {100 * m.accuracy_a:>6.1f} {100 * m.accuracy_b:>6.1f} "
                     f"{100 * m.delta:>+7.1f} {m.a_only:>6} {m.b_only:>6} {m.discordance:>6.3f} {shown[0]} "
                     f"{shown[1]:>9}")
    seeds = measured[-1].seeds
    what = f"|Δ| = {100 * abs(delta):g} points" if delta is not None else "each task's own measured |Δ|"
    lines.append(f"needed: (seed, question) pairs per task for {100 * target:g} % power to detect {what} at the "
                 f"measured discordance psi (paired McNemar, Connor 1987), two-sided alpha {alpha:g}; at α/"
                 f"{datasets}: the first step of Holm over {datasets} dataset(s). With {seeds} seed(s) per pair: "
                 f"questions = pairs / seeds (rounded up). — = not reachable (no discordant pair, or |Δ| >= psi: "
                 f"give --delta).")
    if seeds >= 2:
        lines += seed_lines(measured, datasets, delta, alpha, target)
    return lines


def seed_lines(measured: list[Measured], datasets: int, delta: float | None, alpha: float, target: float
               ) -> list[str]:
    """The seed-as-unit table: each paired seed's Δ, their standard deviation s, and the seeds needed at alpha
    and at alpha / datasets (power.seeds_sample_size)."""
    strict = alpha / max(datasets, 1)
    width = 7 * measured[-1].seeds
    lines = ["", f"{'task':<24} {'Δ per seed (pts)':>{max(width, 16)}} {'s pts':>6} {'seeds':>6} "
                 f"{f'at α/{datasets}':>9}"]
    for m in measured:
        wanted = abs(m.delta if delta is None else delta)
        found = ([power.seeds_sample_size(wanted, m.seed_std, level, target) for level in (alpha, strict)]
                 if wanted > 0 and m.seed_std else [None, None])
        shown = [f"{n:,}" if n is not None else "—" for n in found]
        deltas = " ".join(f"{100 * d:+6.1f}" for d in m.seed_deltas)
        lines.append(f"{m.task:<24} {deltas:>{max(width, 16)}} {100 * m.seed_std:>6.1f} {shown[0]:>6} "
                     f"{shown[1]:>9}")
    what = f"|Δ| = {100 * abs(delta):g} points" if delta is not None else "each task's own measured |Δ|"
    lines.append(f"seeds: training seeds for {100 * target:g} % power to detect {what} with the seed as the unit "
                 f"(normal approximation, n = ((z(1-α/2) + z(power)) · s / |Δ|)², s the standard deviation of the "
                 f"per-seed Δ); above McNemar's pairs / questions when seeds disagree. — = nothing to detect, or the "
                 f"seeds agree exactly (then the questions limit it: the pairs above).")
    return lines
