"""Coverage of the per-task delta interval (reporting.statistics.exact_paired_interval), by simulation.

Plain script (prints measured figures; not a pass/fail test). Two runs answer n questions; a alone is right on a
question with probability `a_only`, b alone with `b_only` (the true difference is their difference). For each
setting, `--trials` seeded experiments are drawn and the share whose 95 % interval holds the true difference is
printed (its coverage), with the mean width in points, and how often the exact McNemar test rejects. The interval
is built to exclude 0 exactly when that test rejects, so it is conservative where the test is.

  .venv/bin/python benchmarks/coverage_paired_interval.py
  .venv/bin/python benchmarks/coverage_paired_interval.py --n 50 --trials 4000
"""

from __future__ import annotations

import argparse

import numpy as np

from owlore_bench.reporting.statistics import exact_paired_interval, mcnemar_exact

SETTINGS = ((0.0, 0.0), (0.02, 0.02), (0.05, 0.0), (0.1, 0.02), (0.2, 0.05), (0.25, 0.25), (0.3, 0.1), (0.5, 0.0),
            (0.4, 0.4))  # (a alone right, b alone right) per question


def coverage(n: int, a_only: float, b_only: float, trials: int, seed: int) -> tuple[float, float, float]:
    """(coverage, mean width in points, share rejected at 5 %) over `trials` simulated experiments."""
    counts = np.random.default_rng(seed).multinomial(n, [a_only, b_only, 1 - a_only - b_only], size=trials)
    truth, found = 100 * (a_only - b_only), {}
    covered = width = rejected = 0.0
    for a, b, _ in counts:
        key = (int(a), int(b))
        if key not in found:
            found[key] = (*exact_paired_interval(*key, n), mcnemar_exact(*key))
        low, high, p = found[key]
        covered += low <= truth <= high
        width += high - low
        rejected += p < 0.05
    return covered / trials, width / trials, rejected / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="*", default=[20, 50, 100], help="questions (default 20 50 100)")
    parser.add_argument("--trials", type=int, default=4000, help="experiments per setting (default 4000)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print("| n | a alone | b alone | true Δ (pts) | coverage | mean width (pts) | McNemar rejects |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.n:
        for a_only, b_only in SETTINGS:
            share, width, rejected = coverage(n, a_only, b_only, args.trials, args.seed)
            print(f"| {n} | {a_only:.2f} | {b_only:.2f} | {100 * (a_only - b_only):+.0f} | {share:.3f} | "
                  f"{width:.1f} | {rejected:.3f} |")


if __name__ == "__main__":
    main()
