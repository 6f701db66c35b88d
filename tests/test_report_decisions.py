"""Decisions in the report from per-question outcomes (tests/report_helpers.py): cell intervals, the bold rule, the
delta table and its Holm families, runs without outcomes."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_helpers import (
    OUTCOMES,
    SEEDS,
    TASKS,
    scipy_wilson,
    vector,
    write_eval,
    write_experiment,
    write_json,
    write_outcomes,
)
from scipy import stats

from owlore_bench.errors import UserError
from owlore_bench.reporting.delta_tables import render_delta_markdown
from owlore_bench.reporting.render import csv_frame, display_frame, render_markdown
from owlore_bench.reporting.tables import build_table


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    return write_experiment(tmp_path)


def shown(mean: float, low: float, high: float) -> str:
    """A cell by hand: '±' only when both sides of the interval round to the same number."""
    below, above = f"{mean - low:.1f}", f"{high - mean:.1f}"
    return f"{mean:.1f} ±{above}" if below == above else f"{mean:.1f} [{low:.1f}, {high:.1f}]"


def test_one_seed_cells_show_the_wilson_interval_and_the_csv_its_bounds(tmp_path: Path):
    table = build_table([write_outcomes(tmp_path)])
    frame = display_frame(table).set_index("Method")
    csv = csv_frame(table).set_index("row")
    for label, seeds in OUTCOMES.items():
        boolq = seeds[0][0]
        low, high = scipy_wilson(boolq)
        assert frame.loc[label, "boolq"].strip("*") == shown(100 * np.mean(boolq), low, high)
        assert (csv.loc[label, "boolq_acc_0shot_ci_low"], csv.loc[label, "boolq_acc_0shot_ci_high"]) == \
            pytest.approx((low, high))
        assert csv.loc[label, "boolq_acc_0shot_questions"] == 100
        assert csv.loc[label, "avg_ci_low"] < csv.loc[label, "avg_mean"] < csv.loc[label, "avg_ci_high"]
    assert frame.loc["base", "boolq"] == "50.0 ±9.6"  # Wilson is symmetric at 50 %: ± ...
    assert frame.loc["owlore", "boolq"].strip("*") == "80.0 [71.1, 86.7]"  # ... and not at 80 %: [low, high]
    assert frame.loc["lora", "commonsense_avg"] == "62.0"  # a group column: no outcomes, no interval
    caption = render_markdown(table)
    assert "Wilson" in caption and "not the training seed's variance" in caption


def test_bold_only_where_the_best_is_distinguishable_from_the_runner_up(tmp_path: Path):
    frame = display_frame(build_table([write_outcomes(tmp_path)])).set_index("Method")
    assert frame.loc["owlore", "boolq"].startswith("**")  # 80 vs 66: 14 discordant, all owlore's
    assert not any(frame["arc_easy"].str.startswith("**"))  # full_ft 60 vs lora 58: p = 0.5
    assert sum(frame["boolq"].str.startswith("**")) == 1


def holm_by_hand(pvalues: list[float]) -> list[float]:
    order = sorted(range(len(pvalues)), key=lambda k: pvalues[k])
    adjusted, running = [0.0] * len(pvalues), 0.0
    for rank, k in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[k]))
        adjusted[k] = running
    return adjusted


def test_delta_table_against_full_ft_and_versus(tmp_path: Path):
    directory = write_outcomes(tmp_path)
    deltas = build_table([directory]).attrs["deltas"].set_index(["row", "column"])
    assert set(deltas.index.get_level_values("row")) == {"base", "lora", "owlore"}  # full_ft is the reference
    for label in ("base", "lora", "owlore"):
        pvalues = []
        for task, position in (("boolq", 0), ("arc_easy", 1)):
            mine, ref = np.array(OUTCOMES[label][0][position]), np.array(OUTCOMES["full_ft"][0][position])
            line = deltas.loc[(label, task)]
            assert line["delta"] == pytest.approx(100 * (mine.mean() - ref.mean()))
            assert line["ci_low"] <= line["delta"] <= line["ci_high"]
            a_only, b_only = int(((mine == 1) & (ref == 0)).sum()), int(((mine == 0) & (ref == 1)).sum())
            pvalues.append(stats.binomtest(a_only, a_only + b_only).pvalue if a_only + b_only else 1.0)
            assert line["p"] == pytest.approx(pvalues[-1]) and line["test"] == "exact McNemar"
            assert (line["ci_low"] > 0 or line["ci_high"] < 0) == (line["p"] < 0.05)  # interval and p agree
        holm = holm_by_hand(pvalues)
        assert [deltas.loc[(label, t), "p_holm"] for t in TASKS] == pytest.approx(holm)
        assert [deltas.loc[(label, t), "marker"] for t in TASKS] == ["*" if p < 0.05 else "n.s." for p in holm]
        average = deltas.loc[(label, "Avg")]
        assert average["delta"] == pytest.approx(np.mean([deltas.loc[(label, t), "delta"] for t in TASKS]))
        assert average["n"] == 200
    versus_base = build_table([directory], versus="base").attrs["deltas"]
    assert set(versus_base["reference"]) == {"base"} and "base" not in set(versus_base["row"])
    with pytest.raises(UserError, match="--versus: no row 'lorra'.*Did you mean 'lora'"):
        build_table([directory], versus="lorra")


def test_delta_files_and_report_lines(tmp_path: Path, capsys):
    from owlore_bench.cli import main

    directory = write_outcomes(tmp_path)
    assert main(["report", str(directory), "--no-plots", "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "Δ against full_ft" in printed and "| owlore" in printed and "no per-question outcomes" not in printed
    csv = pd.read_csv(tmp_path / "out" / "delta.csv")
    assert list(csv.columns) == ["row", "reference", "column", "n", "delta", "ci_low", "ci_high", "test", "p",
                                 "p_holm", "marker", "holm_family"]  # the old columns first, in their order
    owlore_boolq = csv[(csv["row"] == "owlore") & (csv["column"] == "boolq")].iloc[0]
    assert owlore_boolq["delta"] == pytest.approx(20.0) and owlore_boolq["marker"] == "*"
    latex = (tmp_path / "out" / "delta.tex").read_text()
    assert r"$\Delta$" in latex and "+20.0 [" in latex and "\\caption{" in latex
    assert "+20.0 [" in (tmp_path / "out" / "delta.md").read_text()


def test_runs_without_outcomes_render_as_before_with_one_line_on_how_to_get_them(experiment, tmp_path, capsys):
    from owlore_bench.cli import main

    table = build_table([experiment])
    several_seeds = [label for label in SEEDS if label != "base"]  # no questions to pair seeds on: no interval
    assert table.loc[several_seeds, ("boolq", "ci_low")].isna().all()
    assert table.loc["base", ("boolq", "ci_low")] == pytest.approx(scipy_wilson([1] * 50 + [0] * 50)[0])
    assert "±" in display_frame(table).set_index("Method").loc["base", "boolq"]  # one seed: from the counts
    assert main(["report", str(experiment), "--no-plots", "--out", str(tmp_path / "out")]) == 0
    hints = [line for line in capsys.readouterr().out.splitlines() if "no per-question outcomes" in line]
    assert len(hints) == 1 and "owlore-bench eval --run RUN --tasks boolq,arc_easy --out RUN" in hints[0]
    assert not (tmp_path / "out" / "delta.csv").exists()


def test_several_seeds_show_mean_and_std_and_the_csv_a_two_level_interval(tmp_path: Path):
    seeds = {**OUTCOMES, "lora": {1: (vector(66), vector(58)), 2: (vector(70, offset=5), vector(50))}}
    table = build_table([write_outcomes(tmp_path, seeds)])
    cell = display_frame(table).set_index("Method").loc["lora", "boolq"]
    assert cell == f"{68.0:.1f} ± {statistics.stdev([66.0, 70.0]):.1f} (2)"
    low, high = table.loc["lora", ("boolq", "ci_low")], table.loc["lora", ("boolq", "ci_high")]
    assert low < 68.0 < high
    assert table.attrs["interval_kinds"] == ["bootstrap", "wilson"]
    deltas = table.attrs["deltas"].set_index(["row", "column"])
    assert deltas.loc[("lora", "boolq"), "test"] == "bootstrap, seeds then questions"


def test_one_seed_runs_without_samples_get_wilson_cells_from_the_eval_json_counts_but_no_paired_test(tmp_path):
    """The committed results predate samples/: one seed's interval needs only k and n, a paired test needs more."""
    directory = tmp_path / "old"
    write_eval(directory, "full_ft", 0, {"boolq": 0.6, "arc_easy": 0.3})  # n = 10 per task
    write_eval(directory, "lora", 0, {"boolq": 1.0, "arc_easy": 0.3})
    table = build_table([directory])
    low, high = scipy_wilson([1] * 6 + [0] * 4)
    assert table.loc["full_ft", ("boolq", "ci_low")] == pytest.approx(low)
    assert table.loc["full_ft", ("boolq", "ci_high")] == pytest.approx(high)
    assert table.attrs["bold"].get("boolq", set()) == set()  # 100 vs 60 on 10 questions: pairing unknown, no bold
    assert "Wilson intervals from eval.json's counts" in table.attrs["missing_samples"]
    several = tmp_path / "seeds"
    for seed in (0, 1):
        write_eval(several, "full_ft", seed, {"boolq": 0.6})
    assert np.isnan(build_table([several]).loc["full_ft", ("boolq", "ci_low")])  # seeds: questions unpaired


# ---------------------------------------------------------------- Holm families, prompt formats, agreement
FAMILY_TASKS = ("x_labels", "x_choices", "y_labels")  # x in two prompt formats of the same 20 questions
FAMILY_OUTCOMES = {  # discordant questions against full_ft, all the row's own: McNemar p = 2 * 0.5 ** k
    "full_ft": {"x_labels": vector(5, 20), "x_choices": vector(5, 20), "y_labels": vector(2, 20)},
    "lora": {"x_labels": vector(15, 20), "x_choices": vector(8, 20), "y_labels": vector(10, 20)},  # k 10, 3, 8
    "owlore": {"x_labels": vector(11, 20), "x_choices": vector(12, 20), "y_labels": vector(2, 20)},  # k 6, 7, 0
}


def write_family_experiment(root: Path) -> Path:
    from owlore_bench.evaluation.samples import write_samples

    directory = root / "family"
    write_json(directory / "experiment.json", {"name": "family", "eval": {"tasks": list(FAMILY_TASKS)},
                                               "methods": [{"name": "lora"}, {"name": "owlore"}]})
    for label, tasks in FAMILY_OUTCOMES.items():
        write_eval(directory, label, 0, {task: float(np.mean(x)) for task, x in tasks.items()})
        targets = {"x_labels": 1, "x_choices": 1, "y_labels": 0}  # x's two formats: the same questions
        write_samples(directory / label / "seed-0", {task: [{"i": i, "t": targets[task], "p": v, "acc": v}
                                                            for i, v in enumerate(x)] for task, x in tasks.items()})
    return directory


def mcnemar(k: int) -> float:
    return 2 * 0.5 ** k if k else 1.0


@pytest.mark.parametrize("adjust, expected", [
    # columns: each row's datasets; x's member p is the larger of its formats' (intersection-union)
    ("columns", {"lora": {"x": 0.25, "y": 2 * mcnemar(8)}, "owlore": {"x": 2 * mcnemar(6), "y": 1.0}}),
    # rows: each dataset's rows
    ("rows", {"lora": {"x": 0.25, "y": 2 * mcnemar(8)}, "owlore": {"x": 2 * mcnemar(6), "y": 1.0}}),
    # all: the 4 (row, dataset) members of the table
    ("all", {"lora": {"x": 2 * 0.25, "y": 4 * mcnemar(8)}, "owlore": {"x": 3 * mcnemar(6), "y": 1.0}}),
])
def test_holm_families_count_each_dataset_once(tmp_path, adjust, expected):
    table = build_table([write_family_experiment(tmp_path)], adjust=adjust)
    assert table.attrs["datasets"] == {"x_labels": "x", "x_choices": "x", "y_labels": "y_labels"}
    deltas = table.attrs["deltas"].set_index(["row", "column"])
    for (row, column), line in deltas.iterrows():
        if column == "Avg":
            assert line["p_holm"] == line["p"] and line["holm_family"].startswith("none")
            assert line["marker"] == ("*" if line["p"] < 0.05 else "n.s.")  # the Avg's own p: one rule
            continue
        dataset = "x" if column.startswith("x") else "y"
        assert line["p_holm"] == pytest.approx(expected[row][dataset]), (row, column)
        assert line["marker"] == ("*" if expected[row][dataset] < 0.05 else "n.s.")
        if line["marker"] == "*":  # the dataset's adjusted p is at least the format's own: its interval holds no 0
            assert line["ci_low"] > 0 or line["ci_high"] < 0
    assert deltas.loc[("lora", "x_labels"), "p"] == pytest.approx(mcnemar(10))  # its own p stays in its cell
    caption = render_markdown(table) + table.attrs["deltas"].to_string()
    assert f"--adjust {adjust}" in render_delta_markdown(table) and "3 task columns are 2 datasets" in \
        render_delta_markdown(table), caption


def test_every_delta_interval_agrees_with_its_p_and_none_has_zero_width(tmp_path):
    identical = {**OUTCOMES, "lora": OUTCOMES["full_ft"]}  # lora answers exactly as full_ft: nothing varies
    table = build_table([write_outcomes(tmp_path, identical)])
    deltas = table.attrs["deltas"]
    assert (deltas["ci_high"] > deltas["ci_low"]).all()
    assert ((deltas["ci_low"] > 0) | (deltas["ci_high"] < 0)).tolist() == (deltas["p"] < 0.05).tolist()
    same = deltas[(deltas["row"] == "lora") & (deltas["column"] == "boolq")].iloc[0]
    bound = 100 * (1 - 0.025 ** (1 / 100))  # 0 of 100 questions disagree: Clopper-Pearson's upper bound
    assert (same["ci_low"], same["ci_high"], same["p"]) == pytest.approx((-bound, bound, 1.0))
    average = deltas[(deltas["row"] == "lora") & (deltas["column"] == "Avg")].iloc[0]
    assert average["test"].startswith("exact McNemar, pooled") and average["ci_high"] > 0


def test_the_adjust_flag_reaches_the_delta_files(tmp_path, capsys):
    from owlore_bench.cli import main

    directory = write_family_experiment(tmp_path)
    assert main(["report", str(directory), "--no-plots", "--adjust", "all", "--out", str(tmp_path / "out")]) == 0
    csv = pd.read_csv(tmp_path / "out" / "delta.csv")
    assert set(csv.loc[csv["column"] != "Avg", "holm_family"]) == {"all: 4 (row, dataset) tests"}
    assert "(Holm 0.500) n.s." in (tmp_path / "out" / "delta.md").read_text()  # lora x_labels: p 0.002, Holm 0.5
    with pytest.raises(UserError, match="--adjust: unknown family 'cols'"):
        build_table([directory], adjust="cols")
