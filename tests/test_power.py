"""McNemar power and sample size (reporting.power) against the closed form written out here and against a
seeded simulation of the exact McNemar test the reports run; the discordance's assumption and its true bound
(B3); `power --pilot`, which measures the discordance of real runs; the `power` command and `run --dry-run`'s
lines."""

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
    max_discordance,
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


def test_independent_discordance_is_an_assumption_and_max_discordance_the_bound():
    assert independent_discordance(0.5, 0.0) == pytest.approx(0.5)
    assert independent_discordance(0.6, 0.02) == pytest.approx(0.6 * 0.38 + 0.62 * 0.4)
    # B3: 'an upper bound' it is not; two runs at 50 % can disagree on every question
    assert max_discordance(0.5, 0.0) == 1.0 > independent_discordance(0.5, 0.0)
    assert max_discordance(0.6, 0.02) == pytest.approx(2 - 0.6 - 0.62)
    assert max_discordance(0.2, 0.1) == pytest.approx(0.2 + 0.3)
    rng = np.random.default_rng(0)  # any joint outcome of two runs stays within it
    for _ in range(200):
        a, b = rng.integers(0, 2, 30), rng.integers(0, 2, 30)
        assert np.mean(a != b) <= max_discordance(a.mean(), b.mean() - a.mean()) + 1e-12


def test_power_command_and_its_one_line_errors(capsys):
    done = run_cli("power", "--acc", "0.6", "--delta", "2", "--discordance", "0.2", timeout=120)  # the real CLI
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{math.ceil(connor_n(0.02, 0.2))} questions detect +2 points")
    assert main(["power", "--acc", "0.6", "--delta", "2"]) == 0  # no discordance: the assumption and the bound
    assumed, bound = capsys.readouterr().out.splitlines()
    assert assumed.startswith(f"{math.ceil(connor_n(0.02, independent_discordance(0.6, 0.02)))} questions")
    assert "an assumption, not a bound" in assumed and "upper bound" not in assumed
    assert bound.startswith(f"{math.ceil(connor_n(0.02, 0.78))} questions") and "the upper bound" in bound
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


def test_dry_run_lines_size_a_task_limits_entry_by_its_own_n():
    lines = dry_run_lines(["commonsense6_labels"], 25, {"boolq_labels": 400})
    assert [line.split()[:2] for line in lines[1:]] == [["commonsense6_labels", "(others)"], ["boolq_labels", "n"]]
    assert lines[2].split()[2] == "400"
    assert f"{100 * smallest_detectable_difference(400, 0.5):.1f}" in lines[2]
    assert dry_run_lines(["piqa_labels"], None, {"boolq_labels": 50})[1].split()[1:] == ["n", "whole", "test", "split"]


def write_evaluated(folder, outcomes: dict[str, list[int]]) -> None:
    """A finished, evaluated run folder (summary.json, eval.json, samples/)."""
    import json

    from owlore_bench.evaluation.samples import write_samples

    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({"status": "ok"}))
    (folder / "eval.json").write_text(json.dumps({"rows": [{"task": t, "metric": "acc", "value": sum(x) / len(x),
                                                            "n": len(x)} for t, x in outcomes.items()]}))
    write_samples(folder, {t: [{"i": i, "t": 1, "p": v, "acc": v} for i, v in enumerate(x)]
                           for t, x in outcomes.items()})


def test_pilot_measures_the_discordance_of_real_pairs_and_sizes_from_it(tmp_path, capsys):
    """piqa: 40 questions, A alone right on 6, B alone on 2, both on 16 (A 55 %, B 45 %, psi 0.2, Δ +10
    points); boolq: 40 questions, 4 and 4, both on 32 (90 % each, psi 0.2, Δ 0). Pooled: 80 pairs, A 72.5 %,
    B 67.5 %, psi 0.2, Δ +5."""
    a_task = [1] * 6 + [0] * 2 + [1] * 16 + [0] * 16
    b_task = [0] * 6 + [1] * 2 + [1] * 16 + [0] * 16
    write_evaluated(tmp_path / "a", {"piqa": a_task, "boolq": [1] * 4 + [0] * 4 + [1] * 32})
    write_evaluated(tmp_path / "b", {"piqa": b_task, "boolq": [0] * 4 + [1] * 4 + [1] * 32})
    capsys.readouterr()
    assert main(["power", "--pilot", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()
            if line.split()[:1] in (["piqa"], ["boolq"], ["all"])}
    assert rows["piqa"][1:8] == ["40", "55.0", "45.0", "+10.0", "6", "2", "0.200"]
    assert rows["piqa"][8] == f"{mcnemar_sample_size(0.1, 0.2):,}"  # its own Δ at its own psi
    assert rows["piqa"][9] == f"{mcnemar_sample_size(0.1, 0.2, alpha=0.025):,}"  # Holm's first step, 2 datasets
    assert rows["boolq"][8] == "—"  # no difference to detect
    assert rows["all"][2:9] == ["80", "72.5", "67.5", "+5.0", "10", "6", "0.200"]
    assert main(["power", "--pilot", str(tmp_path / "a"), str(tmp_path / "b"), "--delta", "10"]) == 0
    lines = capsys.readouterr().out.splitlines()
    boolq = next(line for line in lines if line.startswith("boolq")).split()
    assert boolq[8] == f"{mcnemar_sample_size(0.1, 0.2):,}" and "|Δ| = 10 points" in lines[-1]
    assert main(["power", "--pilot", str(tmp_path / "a"), str(tmp_path / "nowhere")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_pilot_with_seeds_sizes_the_seeds_from_their_spread(tmp_path, capsys):
    """Two label folders, 3 paired seeds, one task of 10 questions: A right on 6, 5, 7 and B on 4, 5, 3, so the
    per-seed Δ is +20, +0, +40 points, mean +20, standard deviation s = 20. Seeds for 80 % power at alpha 0.05,
    by hand: ((1.95996 + 0.84162) · 20 / 20)² = 7.849, so 8."""
    for seed, (right_a, right_b) in enumerate(((6, 4), (5, 5), (7, 3))):
        write_evaluated(tmp_path / "a" / f"seed-{seed}", {"piqa": [1] * right_a + [0] * (10 - right_a)})
        write_evaluated(tmp_path / "b" / f"seed-{seed}", {"piqa": [1] * right_b + [0] * (10 - right_b)})
    capsys.readouterr()
    assert main(["power", "--pilot", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    seed_table = out.split("\n\n", 1)[1].splitlines()
    rows = {line.split()[0]: line.split() for line in seed_table if line.split()[:1] in (["piqa"], ["all"])}
    assert rows["piqa"][1:] == ["+20.0", "+0.0", "+40.0", "20.0", "8", "8"]
    assert rows["all"][2:] == rows["piqa"][1:]  # one task: pooled is that task
    assert "seed as the unit" in seed_table[-1]
