"""McNemar power and sample size (reporting.power) against the closed form written out here and against a
seeded simulation of the exact McNemar test the reports run; the `power` command and `run --dry-run`'s lines."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import run_cli
from scipy import stats

from owlore_bench.cli import main
from owlore_bench.commands.power import dry_run_lines
from owlore_bench.reporting.power import (
    independent_discordance,
    mcnemar_power,
    mcnemar_sample_size,
    smallest_detectable_difference,
)


def connor_n(delta: float, psi: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Connor (1987), eq. 3, unrounded."""
    z_a, z_b = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    return (z_a * math.sqrt(psi) + z_b * math.sqrt(psi - delta * delta)) ** 2 / (delta * delta)


def simulated_exact_power(n: int, delta: float, psi: float, trials: int = 1500, seed: int = 0) -> float:
    """Share of simulated paired experiments (multinomial: a alone right, b alone right, agree) in which the
    exact McNemar test (binomial on the discordant pairs) rejects at 5 %."""
    counts = np.random.default_rng(seed).multinomial(n, [(psi + delta) / 2, (psi - delta) / 2, 1 - psi], trials)
    return float(np.mean([stats.binomtest(int(a), int(a + b)).pvalue < 0.05 for a, b, _ in counts if a + b]))


@pytest.mark.parametrize("delta, psi", [(0.02, 0.2), (0.1, 0.3), (0.05, 0.476)])
def test_sample_size_is_connors_formula_rounded_up(delta, psi):
    assert mcnemar_sample_size(delta, psi) == math.ceil(connor_n(delta, psi))
    assert mcnemar_sample_size(-delta, psi) == mcnemar_sample_size(delta, psi)  # two-sided


def test_power_at_the_sample_size_is_80_percent_and_grows_with_n():
    n = connor_n(0.1, 0.3)
    assert mcnemar_power(n, 0.1, 0.3) == pytest.approx(0.8, abs=1e-9)
    assert mcnemar_power(n / 2, 0.1, 0.3) < 0.6 < 0.95 < mcnemar_power(3 * n, 0.1, 0.3)


@pytest.mark.parametrize("n_factor", [0.5, 1.0])
def test_the_formula_predicts_the_simulated_exact_test(n_factor):
    n = round(n_factor * mcnemar_sample_size(0.1, 0.3))
    # the exact test is a little conservative (about 3 points under the normal approximation at n = 234)
    assert simulated_exact_power(n, 0.1, 0.3) == pytest.approx(mcnemar_power(n, 0.1, 0.3), abs=0.06)


def test_smallest_detectable_difference_inverts_the_power():
    smallest = smallest_detectable_difference(100, 0.2)
    assert mcnemar_power(100, smallest, 0.2) == pytest.approx(0.8, abs=1e-6)
    assert smallest_detectable_difference(400, 0.2) < smallest  # more questions, smaller differences
    with_accuracy = smallest_detectable_difference(100, accuracy=0.6)
    psi = independent_discordance(0.6, with_accuracy)
    assert mcnemar_power(100, with_accuracy, psi) == pytest.approx(0.8, abs=1e-6)
    assert math.isnan(smallest_detectable_difference(5, 0.2))  # 5 questions never reach 80 %


def test_independent_discordance():
    assert independent_discordance(0.5, 0.0) == pytest.approx(0.5)
    assert independent_discordance(0.6, 0.02) == pytest.approx(0.6 * 0.38 + 0.62 * 0.4)


def test_power_command_and_its_one_line_errors(capsys):
    done = run_cli("power", "--acc", "0.6", "--delta", "2", "--discordance", "0.2", timeout=120)  # the real CLI
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{math.ceil(connor_n(0.02, 0.2))} questions detect +2 points")
    assert main(["power", "--n", "100", "--discordance", "0.2"]) == 0
    assert f"{100 * smallest_detectable_difference(100, 0.2):.1f} points" in capsys.readouterr().out
    for bad, field in ((["--acc", "60", "--delta", "2"], "--acc"), (["--acc", "0.6"], "--acc and --delta"),
                       (["--acc", "0.6", "--delta", "30", "--discordance", "0.2"], "--discordance")):
        assert main(["power", *bad]) == 2
        error = capsys.readouterr().err
        assert len(error.strip().splitlines()) == 1 and field in error, error


def test_dry_run_lines_name_each_task_and_its_smallest_difference():
    lines = dry_run_lines(["bb_navigate", "bb_winowhy"], 100)
    worst, typical = (100 * smallest_detectable_difference(100, psi) for psi in (0.5, 0.2))
    assert [line.split()[:3] for line in lines[1:]] == [["bb_navigate", "n", "100"], ["bb_winowhy", "n", "100"]]
    assert f"{worst:.1f} ({typical:.1f} at discordance 0.2)" in lines[1]
    assert "whole test split" in dry_run_lines(["bb_navigate"], None)[0]
    assert dry_run_lines([], 100) == []
