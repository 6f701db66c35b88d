"""`owlore-bench power --pilot RUN_A RUN_B`: the discordance two real runs have, measured from their paired
per-question outcomes, and the sample size it implies (reporting/power.py).

A pilot is two run folders, or two label folders whose seeds pair (reporting/pairs.py). Per task it counts the
(seed, question) pairs each run alone gets right; their share is the measured discordance psi, the number the
McNemar design needs and that independent-error guesses get wrong in both directions.
"""

from __future__ import annotations

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
                                 int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())))
    pairs = sum(m.pairs for m in measured)
    measured.append(Measured("all tasks", pairs, measured[0].seeds,
                             sum(m.accuracy_a * m.pairs for m in measured) / pairs,
                             sum(m.accuracy_b * m.pairs for m in measured) / pairs,
                             sum(m.a_only for m in measured), sum(m.b_only for m in measured)))
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
    return lines
