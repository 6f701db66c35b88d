"""`owlore-bench compare` by label: two label folders, or an experiment folder with --labels, pair seed s with seed s
and test over the (seed, question) pairs, seeds then questions resampled; a seed only one side has is one line; a
folder that is no run, label or experiment is one line; the numbers are the report's delta table's. The runs are
fake folders (summary.json, eval.json and samples/ written by the suite's own samples writer), so every number below
is worked out by hand. The end-to-end compare of real runs, and its run-folder errors, are in tests/test_samples.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from owlore_bench.cli import main
from owlore_bench.evaluation.samples import write_samples

# task_x, 10 questions. Seed 0: A right on q0-q6, B on q0-q4 (A alone right on q5, q6). Seed 1: both right on
# q0-q4, then A alone on q5 and B alone on q6. Over seeds 0 and 1: 20 (seed, question) pairs, A 13 right
# (65.0 %), B 11 (55.0 %), Δ = (13 - 11) / 20 = +10.0 points. Seed 0 alone: Δ +20.0, exact McNemar p 0.500.
# task_y, 4 questions, the same answers on both sides: Δ +0.0, p 1.000, and as nothing differs the pooled exact
# interval: 0 of 8 pairs disagree, up to 1 - 0.025^(1/8) = 36.9 % could. Avg of the two tasks: +5.0.
TASK_X = {0: ([1] * 7 + [0] * 3, [1] * 5 + [0] * 5), 1: ([1] * 6 + [0] * 4, [1] * 5 + [0, 1, 0, 0, 0])}
TASK_Y = {0: [1, 0, 1, 0], 1: [1, 1, 0, 0]}


def write_run(folder: Path, outcomes: dict[str, list[int]], status: str = "ok") -> Path:
    """A finished, evaluated run folder: summary.json, eval.json's rows and samples/<task>.jsonl.gz."""
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({"status": status, "method": folder.parent.name}))
    rows = [{"task": task, "metric": "acc", "value": sum(acc) / len(acc), "n": len(acc)}
            for task, acc in outcomes.items()]
    (folder / "eval.json").write_text(json.dumps({"rows": rows}))
    write_samples(folder, {task: [{"i": i, "t": 1, "p": 1 if right else 0, "acc": right}
                                  for i, right in enumerate(acc)] for task, acc in outcomes.items()})
    return folder


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    """owlore (A): ok seeds 0, 1, 2. lora (B): ok seeds 0, 1 and 3; its seed 2 diverged."""
    root = tmp_path_factory.mktemp("runs") / "sweep"
    for seed in (0, 1):
        write_run(root / "owlore" / f"seed-{seed}", {"task_x": TASK_X[seed][0], "task_y": TASK_Y[seed]})
        write_run(root / "lora" / f"seed-{seed}", {"task_x": TASK_X[seed][1], "task_y": TASK_Y[seed]})
    write_run(root / "owlore" / "seed-2", {"task_x": [0] * 10, "task_y": [0] * 4})
    write_run(root / "lora" / "seed-2", {"task_x": [1] * 10, "task_y": [1] * 4}, status="diverged")
    write_run(root / "lora" / "seed-3", {"task_x": [1] * 10, "task_y": [1] * 4})
    return root


def table(out: str) -> dict[str, list[str]]:
    """The printed table by its first cell (columns are two or more spaces apart)."""
    lines = [re.split(r"\s{2,}", line.strip()) for line in out.splitlines() if "  " in line.strip()]
    return {cells[0]: cells[1:] for cells in lines}


def compare(capsys, *args: str) -> str:
    capsys.readouterr()
    assert main(["compare", *args, "--n-boot", "200"]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("how", ["label folders", "--labels"])
def test_two_labels_pair_seed_with_seed_and_test_over_the_pooled_pairs(experiment, capsys, how):
    args = ([str(experiment / "owlore"), str(experiment / "lora")] if how == "label folders"
            else [str(experiment), "--labels", "owlore,lora"])
    out = compare(capsys, *args)
    rows = table(out)
    n, acc_a, acc_b, delta, interval, p, holm, marker = rows["task_x"]
    assert (n, delta, marker) == ("20", "+10.0", "n.s.")
    low, high = (float(bound) for bound in interval.strip("[]").split(", "))
    assert low < 0 < high and float(p) >= 0.05  # interval and p agree
    assert acc_a.startswith("65.0 [") and acc_b.startswith("55.0 [")
    assert rows["task_y"][0] == "8" and rows["task_y"][3:6] == ["+0.0", "[-36.9, +36.9]", "1.000"]
    assert rows["Avg (2 tasks)"][0] == "28" and rows["Avg (2 tasks)"][3] == "+5.0"
    lines = out.splitlines()
    assert lines[0] == f"A: owlore ({experiment / 'owlore'})" and lines[1] == f"B: lora ({experiment / 'lora'})"
    assert "seeds paired: 0, 1 (both labels have an ok run of each)" in lines
    assert "seed 2: only A (owlore) has an ok run; left out" in lines  # lora's seed 2 diverged
    assert "seed 3: only B (lora) has an ok run; left out" in lines
    assert "Unit: the (seed, question) pair: seed s of A against seed s of B" in out and "seeds then questions" in out


def test_two_run_folders_compare_question_by_question_as_before(experiment, capsys):
    out = compare(capsys, str(experiment / "owlore" / "seed-0"), str(experiment / "lora" / "seed-0"))
    assert table(out)["task_x"][:1] + table(out)["task_x"][3:6:2] == ["10", "+20.0", "0.500"]  # n, Δ, McNemar p
    assert out.splitlines()[:2] == [f"A: {experiment / 'owlore' / 'seed-0'}", f"B: {experiment / 'lora' / 'seed-0'}"]
    assert "Unit: the question (both runs answered the same ones)" in out and "seeds paired" not in out


def test_labels_with_one_shared_seed_test_over_its_questions(experiment, tmp_path, capsys):
    write_run(tmp_path / "a" / "seed-0", {"task_x": TASK_X[0][0]})
    write_run(tmp_path / "a" / "seed-5", {"task_x": TASK_X[1][0]})
    out = compare(capsys, str(tmp_path / "a"), str(experiment / "lora"))
    assert table(out)["task_x"][0] == "10" and table(out)["task_x"][3] == "+20.0"  # seed 0 against seed 0 only
    assert "seed 5: only A (a) has an ok run; left out" in out.splitlines()
    assert "Unit: the question (seed 0 of A against seed 0 of B)" in out


def one_line_error(capsys, *args: str) -> str:
    capsys.readouterr()
    assert main(["compare", *args]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "Traceback" not in error, error
    return error


def test_a_folder_that_is_no_run_label_or_experiment_is_one_line_saying_what_was_expected(experiment, tmp_path,
                                                                                            capsys):
    (tmp_path / "empty").mkdir()
    error = one_line_error(capsys, str(tmp_path / "empty"), str(experiment / "lora"))
    assert f"{tmp_path / 'empty'}: holds no run; expected a run folder (eval.json and samples/" in error
    assert "a label folder (seed-<s>/ runs" in error and "an experiment folder (<label>/seed-<s>/)" in error
    assert "not a folder" in one_line_error(capsys, str(tmp_path / "absent"), str(experiment / "lora"))


@pytest.mark.parametrize("args, expected", [
    (["{exp}"], "RUN_B: missing; give two run folders, two label folders, or an experiment folder with --labels "
                "A,B; it is an experiment folder: name two of its labels with --labels A,B"),
    (["{exp}", "--labels", "owlor,lora"], "no finished run (<label>/seed-<s>/summary.json) of label 'owlor'; its "
                                          "labels: lora, owlore. Did you mean 'owlore'?"),
    (["{exp}", "--labels", "owlore"], "--labels: give one experiment folder and two labels"),
    (["{exp}/owlore", "--labels", "owlore,lora"], "--labels: {exp}/owlore is not an experiment folder"),
    (["{exp}/owlore/seed-0", "{exp}/lora"], "{exp}/owlore/seed-0 is a run folder, {exp}/lora a label folder: give "
                                            "two run folders"),
    (["{exp}/owlore", "{exp}"], "{exp}/owlore is a label folder, {exp} an experiment folder: give two run folders"),
])
def test_bad_label_inputs_are_one_line(experiment, capsys, args, expected):
    error = one_line_error(capsys, *(arg.format(exp=experiment) for arg in args))
    assert expected.format(exp=experiment) in error, error


def test_labels_without_a_shared_seed_or_an_ok_run_are_one_line(tmp_path, capsys):
    write_run(tmp_path / "sweep" / "a" / "seed-0", {"task_x": [1, 0]})
    write_run(tmp_path / "sweep" / "b" / "seed-1", {"task_x": [0, 1]})
    write_run(tmp_path / "sweep" / "c" / "seed-0", {"task_x": [0, 1]}, status="oom")
    assert ("labels a and b share no seed (A has 0, B has 1); seeds pair seed s with seed s"
            in one_line_error(capsys, str(tmp_path / "sweep"), "--labels", "a,b"))
    assert "label 'c' has no run with status ok" in one_line_error(capsys, str(tmp_path / "sweep"), "--labels", "a,c")


def test_compare_prints_the_report_delta_tables_numbers_for_the_same_pair(tmp_path, capsys):
    """One rule for both: the same tests, the same resamples, the same Avg marker."""
    from owlore_bench.reporting.loading import load_results
    from owlore_bench.reporting.tables import table_from_results

    root = tmp_path / "same"
    for seed in (0, 1):
        write_run(root / "owlore" / f"seed-{seed}", {"task_x": TASK_X[seed][0], "task_y": TASK_Y[seed]})
        write_run(root / "lora" / f"seed-{seed}", {"task_x": TASK_X[seed][1], "task_y": [1, 1, 1, 1]})
    (root / "experiment.json").write_text(json.dumps({"name": "same", "tasks": ["task_y", "task_x"]}))  # not name order
    deltas = table_from_results(load_results([root]), versus="lora", n_boot=200).attrs["deltas"].set_index("column")
    rows = table(compare(capsys, str(root / "owlore"), str(root / "lora")))
    for column, shown in (("task_x", rows["task_x"]), ("task_y", rows["task_y"]), ("Avg", rows["Avg (2 tasks)"])):
        line = deltas.loc[column]
        assert shown[4] == f"[{line['ci_low']:+.1f}, {line['ci_high']:+.1f}]", column
        assert shown[5] == f"{line['p']:.3f}" and shown[7] == line["marker"], column


def test_the_base_model_pairs_its_one_evaluation_with_every_seed(tmp_path, capsys):
    """The base label is evaluated once (seed-0, it is not trained): against a 3-seed label it pairs with each of
    the 3 seeds, not only with seed 0. task_x: owlore right on 7, 6 and 0 of 10 (seeds 0, 1, 2), base on 5 every
    time, so 30 pairs, 43.3 % against 50.0 %, Δ = (13 - 15) / 30 = -6.7 points."""
    for seed, acc in ((0, TASK_X[0][0]), (1, TASK_X[1][0]), (2, [0] * 10)):
        write_run(tmp_path / "owlore" / f"seed-{seed}", {"task_x": acc})
    write_run(tmp_path / "base" / "seed-0", {"task_x": TASK_X[0][1]})
    out = compare(capsys, str(tmp_path / "owlore"), str(tmp_path / "base"))
    n, acc_a, acc_b, delta = table(out)["task_x"][:4]
    assert (n, delta) == ("30", "-6.7") and acc_a.startswith("43.3 [") and acc_b.startswith("50.0 [")
    assert "seeds paired: 0, 1, 2 (the base model's one evaluation against each seed of owlore)" in out.splitlines()
    assert "only A" not in out
