"""The numbers table from synthetic result folders (tests/report_helpers.py): means, spreads and n over seeds,
row and column order, cells and their bold, the caption, statuses, merged experiments, the written files."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pandas as pd
import pytest
from report_helpers import (
    GIB,
    SEEDS,
    TRAINABLE,
    expected,
    scipy_wilson,
    write_eval,
    write_experiment,
    write_json,
    write_run,
)

from owlore_bench.errors import UserError
from owlore_bench.reporting.render import csv_frame, display_frame, render_latex, render_markdown, write_tables
from owlore_bench.reporting.tables import build_table


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    return write_experiment(tmp_path)


def test_mean_std_n_from_the_per_seed_json(experiment: Path):
    table = build_table([experiment])
    for label in SEEDS:
        for column, key in ((0, "boolq"), (1, "arc_easy")):
            mean, std, n = expected(label, column)
            assert table.loc[label, (key, "mean")] == pytest.approx(mean)
            assert table.loc[label, (key, "n")] == n
            if n > 1:
                assert table.loc[label, (key, "std")] == pytest.approx(std)
        per_seed_avg = [100 * (b + a) / 2 for b, a, *_ in SEEDS[label].values()]
        assert table.loc[label, ("Avg", "mean")] == pytest.approx(statistics.mean(per_seed_avg))
    assert table.loc["lora", ("peak_mem_bytes", "mean")] == pytest.approx(expected("lora", 3, percent=False)[0])
    assert table.loc["owlore", ("tokens_per_s", "std")] == pytest.approx(expected("owlore", 4, percent=False)[1])
    assert table.loc["lora", ("trainable_params", "mean")] == TRAINABLE["lora"]
    assert math.isnan(table.loc["base", ("peak_mem_bytes", "mean")])


def test_rows_base_first_full_ft_next_then_experiment_order(tmp_path: Path):
    table = build_table([write_experiment(tmp_path, methods=("owlore", "lora"))])
    assert list(table.index) == ["base", "full_ft", "owlore", "lora"]
    table = build_table([write_experiment(tmp_path, "exp2", methods=("lora", "owlore"))])
    assert list(table.index) == ["base", "full_ft", "lora", "owlore"]


def test_columns_are_tasks_then_avg_memory_params_speed_and_groups_stay_out_of_avg(experiment: Path):
    table = build_table([experiment])
    assert list(table.columns.get_level_values(0).unique())[-7:] == [
        "boolq", "arc_easy", "commonsense_avg", "Avg", "peak_mem_bytes", "trainable_params", "tokens_per_s"]
    assert table.attrs["tasks"]["commonsense_avg"]["group"] is True
    header = render_markdown(table).splitlines()[2]
    assert [cell.strip() for cell in header.strip("|").split("|")] == [
        "Method", "boolq", "arc_easy", "commonsense_avg", "Avg", "Peak mem (GiB)", "Trainable params", "Tokens/s"]


def test_cells_show_mean_pm_std_with_n_one_seed_its_interval_and_best_in_bold(experiment: Path):
    frame = display_frame(build_table([experiment])).set_index("Method")
    mean, std, n = expected("owlore", 0)
    # owlore has the best boolq, but without per-question outcomes no test tells it from the runner-up: not bold
    assert frame.loc["owlore", "boolq"] == f"{mean:.1f} ± {std:.1f} ({n})"
    mean, std, n = expected("lora", 0)
    assert frame.loc["lora", "boolq"] == f"{mean:.1f} ± {std:.1f} ({n})"
    # n = 1 without samples/: the Wilson interval from eval.json's counts, no (n); 50 of 100 is symmetric: ±
    low, high = scipy_wilson([1] * 50 + [0] * 50)
    assert frame.loc["base", "boolq"] == f"{100 * SEEDS['base'][0][0]:.1f} ±{(high - low) / 2:.1f}"
    best_memory = min(SEEDS, key=lambda label: expected(label, 3, False)[0] if label != "base" else math.inf)
    assert frame.loc[best_memory, "Peak mem (GiB)"].startswith("**")
    assert frame.loc["full_ft", "Peak mem (GiB)"].startswith(f"{expected('full_ft', 3, False)[0] / GIB:.2f} ± ")
    # no unit recorded its machine's load: a speed may be a busy machine's, so none is bold (test_report_speed.py)
    assert not any(frame["Tokens/s"].str.startswith("**"))
    assert frame.loc["base", "Peak mem (GiB)"] == "—"
    assert not any(frame["Trainable params"].str.startswith("**"))  # no "better" direction for params
    assert not any(frame["boolq"].str.startswith("**")) and not any(frame["Avg"].str.startswith("**"))


def test_metric_flag_picks_acc_norm_where_the_task_has_it(experiment: Path):
    table = build_table([experiment], metric="acc_norm")
    assert table.attrs["tasks"]["arc_easy"]["metric"] == "acc_norm"
    assert table.attrs["tasks"]["boolq"]["metric"] == "acc"  # boolq stores no acc_norm
    assert table.loc["lora", ("arc_easy", "mean")] == pytest.approx(expected("lora", 2)[0])
    assert "acc_norm, 0-shot (arc_easy)" in render_markdown(table)
    assert "acc, 0-shot (boolq" in render_markdown(build_table([experiment]))


def test_shots_in_caption(tmp_path: Path):
    directory = tmp_path / "fewshot"
    write_run(directory, "full_ft", 1, SEEDS["full_ft"][1], shots=5)
    assert "acc, 5-shot (boolq, arc_easy, commonsense_avg)" in render_markdown(build_table([directory]))


def test_status_of_failed_runs_is_shown(tmp_path: Path):
    seeds = {**SEEDS, "lisa": {1: (0, 0, 0, 2 * GIB, 800.0), 2: (0, 0, 0, 2 * GIB, 800.0)}}
    directory = write_experiment(tmp_path, seeds={k: v for k, v in seeds.items() if k != "lisa"})
    for seed in (1, 2):
        write_run(directory, "lisa", seed, seeds["lisa"][seed], status="diverged")
    write_run(directory, "galore", 1, SEEDS["lora"][1])
    write_run(directory, "galore", 2, SEEDS["lora"][2], status="oom")
    table = build_table([directory])
    assert table.loc["lisa", ("status", "")] == "diverged"
    assert table.loc["galore", ("status", "")] == "1/2 oom"
    frame = display_frame(table).set_index("Method")
    assert set(frame.loc["lisa"]) == {"diverged"}
    low, high = scipy_wilson([1] * 66 + [0] * 34)  # the ok seed alone: its eval.json counts, 66 of 100
    assert frame.loc["galore (1/2 oom)", "boolq"] == f"{100 * SEEDS['lora'][1][0]:.1f} [{low:.1f}, {high:.1f}]"
    assert table.loc["galore", ("boolq", "n")] == 1


def test_delta_vs_full_ft(experiment: Path):
    table = build_table([experiment], delta=True)
    full_ft_avg = table.loc["full_ft", ("Avg", "mean")]
    for label in SEEDS:
        assert table.loc[label, ("delta_avg_vs_full_ft", "mean")] == pytest.approx(
            table.loc[label, ("Avg", "mean")] - full_ft_avg)
    frame = display_frame(table).set_index("Method")
    assert frame.loc["full_ft", "Δ Avg vs full FT"] == "ref"
    owlore_delta = table.loc["owlore", ("Avg", "mean")] - full_ft_avg
    assert frame.loc["owlore", "Δ Avg vs full FT"] == f"{owlore_delta:+.1f}"
    assert "Δ" not in render_markdown(build_table([experiment])).splitlines()[2]


def test_merge_two_experiments_prefixes_clashing_labels(tmp_path: Path):
    first = write_experiment(tmp_path, "first", seeds={k: SEEDS[k] for k in ("base", "full_ft", "lora")})
    second = write_experiment(tmp_path, "second", seeds={k: SEEDS[k] for k in ("base", "owlore")})
    table = build_table([first, second])
    assert list(table.index) == ["first/base", "second/base", "full_ft", "lora", "owlore"]
    assert table.loc["owlore", ("experiment", "")] == "second"
    assert table.loc["second/base", ("boolq", "mean")] == pytest.approx(100 * SEEDS["base"][0][0])
    assert list(build_table([tmp_path]).index) == list(table.index)  # a folder of experiments


def test_without_experiment_json_other_rows_are_alphabetical(tmp_path: Path):
    for label in ("zeta", "alpha", "full_ft", "base"):
        write_run(tmp_path / "loose", label, 0, SEEDS["full_ft"][1])
    assert list(build_table([tmp_path / "loose"]).index) == ["base", "full_ft", "alpha", "zeta"]


def test_incomplete_runs_are_skipped_and_counted(experiment: Path):
    (experiment / "lora" / "seed-3").mkdir()
    (experiment / "lora" / "seed-3" / "metrics.jsonl").write_text('{"step": 0, "loss": 2.0}\n')
    table = build_table([experiment])
    assert table.loc["lora", ("runs", "")] == 2
    assert len(table.attrs["skipped"]) == 1
    assert "1 incomplete run(s)" in render_markdown(table)


def test_merging_without_out_and_broken_json_are_one_line_errors(experiment: Path, tmp_path: Path, capsys):
    from owlore_bench.cli import main

    assert main(["report", str(experiment), str(experiment), "--no-plots"]) == 2
    assert "--out: required" in capsys.readouterr().err
    (experiment / "lora" / "seed-1" / "summary.json").write_text('{"method": "lo')
    assert main(["report", str(experiment), "--no-plots", "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "summary.json: not valid JSON" in error


def test_folder_without_runs_is_a_user_error(tmp_path: Path):
    with pytest.raises(UserError, match="no runs"):
        build_table([tmp_path])
    (tmp_path / "exp" / "lora" / "seed-1").mkdir(parents=True)
    with pytest.raises(UserError, match="no finished runs"):
        build_table([tmp_path / "exp"])
    with pytest.raises(UserError, match="no such folder"):
        build_table([tmp_path / "missing"])


def test_written_tables_agree(experiment: Path, tmp_path: Path):
    table = build_table([experiment], delta=True)
    paths = write_tables(table, tmp_path / "out")
    assert [p.name for p in paths] == ["table.md", "table.csv", "table.tex"]
    csv = pd.read_csv(tmp_path / "out" / "table.csv").set_index("row")
    assert csv.loc["lora", "boolq_acc_0shot_mean"] == pytest.approx(expected("lora", 0)[0])
    assert csv.loc["lora", "peak_mem_bytes_mean"] == pytest.approx(expected("lora", 3, False)[0])
    assert list(csv.index) == list(csv_frame(table)["row"])
    latex = (tmp_path / "out" / "table.tex").read_text()
    assert r"\textbf{" in latex and r"$\pm$" in latex and r"full\_ft" in latex and "\\caption{" in latex
    assert latex == render_latex(table)


def test_many_subtasks_fold_into_their_group_and_tasks_flag_picks_columns(tmp_path: Path):
    subjects = {f"mmlu_subject_{i:02d}": 0.2 + 0.01 * i for i in range(20)}
    directory = tmp_path / "mmlu"
    write_eval(directory, "full_ft", 1, {**subjects, "mmlu": 0.4, "boolq": 0.7}, groups={"mmlu": list(subjects)})
    table = build_table([directory])
    assert list(table.attrs["tasks"]) == ["mmlu"]  # 21 plain tasks > 12: only the group column
    assert table.loc["full_ft", ("Avg", "mean")] == pytest.approx(40.0)  # ... and it is what Avg averages
    assert len(table.attrs["hidden_tasks"]) == 21 and "21 stored task row(s) not shown" in render_markdown(table)
    picked = build_table([directory], tasks=["boolq", "mmlu"])
    assert list(picked.attrs["tasks"]) == ["boolq", "mmlu"]
    assert picked.loc["full_ft", ("Avg", "mean")] == pytest.approx(70.0)  # the group stays out of Avg
    with pytest.raises(UserError, match="Did you mean 'boolq'"):
        build_table([directory], tasks=["boolqq"])


def test_experiment_task_list_chooses_the_columns(tmp_path: Path):
    directory = tmp_path / "bb"
    write_json(directory / "experiment.json", {"name": "bb", "tasks": ["bb_navigate", "bb_winowhy"]})
    write_eval(directory, "full_ft", 1, {"bb_navigate": 0.5, "bb_winowhy": 0.6, "bb_extra": 0.1})
    table = build_table([directory])
    assert list(table.attrs["tasks"]) == ["bb_navigate", "bb_winowhy"]
    assert table.loc["full_ft", ("Avg", "mean")] == pytest.approx(55.0)


def test_forgetting_column_from_forgetting_json(experiment: Path):
    assert "Forgetting (ΔCE)" not in display_frame(build_table([experiment])).columns
    write_json(experiment / "owlore" / "seed-1" / "forgetting.json",
           {"base_ce": 3.0, "trained_ce": 3.031, "delta_ce": 0.031, "ci95": [0.020, 0.042], "tokens": 4096,
            "text": "built-in"})
    for seed, delta in ((1, 0.05), (2, 0.07)):
        write_json(experiment / "lora" / f"seed-{seed}" / "forgetting.json",
               {"base_ce": 3.0, "trained_ce": 3.0 + delta, "delta_ce": delta, "ci95": [0, 1], "tokens": 4096,
                "text": "built-in"})
    experiment_table = build_table([experiment])
    frame = display_frame(experiment_table).set_index("Method")
    assert frame.loc["lora", "Forgetting (ΔCE)"] == f"+0.060 ± {statistics.stdev([0.05, 0.07]):.3f} (2)"
    assert frame.loc["full_ft", "Forgetting (ΔCE)"] == "—"
    assert "Forgetting (ΔCE): mean per-token cross-entropy" in render_markdown(experiment_table)
    csv = csv_frame(experiment_table).set_index("row")
    assert csv.loc["lora", "forgetting_delta_ce_mean"] == pytest.approx(0.06)
    assert csv.loc["lora", "forgetting_trained_ce_mean"] == pytest.approx(3.06)
    # owlore has seeds 1 and 2 but only seed 1 measured forgetting: one seed, shown with its interval
    assert frame.loc["owlore", "Forgetting (ΔCE)"] == "+0.031 [+0.020, +0.042]"
    write_json(experiment / "base" / "seed-0" / "forgetting.json",  # the base model against itself: no interval
               {"base_ce": 3.0, "trained_ce": 3.0, "delta_ce": 0.0, "ci95": [0.0, 0.0], "tokens": 4096, "text": "x"})
    assert display_frame(build_table([experiment])).set_index("Method").loc["base", "Forgetting (ΔCE)"] == "+0.000"


def test_caption_states_the_lm_eval_protocol_the_runs_recorded(tmp_path):
    directory = tmp_path / "proto"
    run_dir = write_run(directory, "full_ft", 0, SEEDS["full_ft"][1])
    evaluation = json.loads((run_dir / "eval.json").read_text())
    evaluation["protocol"] = {"lm_eval": "0.4.13", "apply_chat_template": False,
                              "tasks": {"boolq": {"version": 2.0, "num_fewshot": 0}}}
    write_json(run_dir / "eval.json", evaluation)
    assert "Evaluated with lm-eval 0.4.13, 0-shot, no chat template." in render_markdown(build_table([directory]))
