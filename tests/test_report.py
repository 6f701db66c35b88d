"""Tables and plots from synthetic result folders: the folders are written here from explicit per-seed numbers
(the results-store schema), and every expected figure is computed from those numbers, never typed in."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from owlore_bench.errors import UserError
from owlore_bench.reporting.loading import GIB, load_results
from owlore_bench.reporting.plots import pareto_front, write_plots
from owlore_bench.reporting.render import csv_frame, display_frame, render_latex, render_markdown, write_tables
from owlore_bench.reporting.tables import build_table, table_from_results

REPO_ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TASKS = ("boolq", "arc_easy")

# label → seed → (boolq acc, arc_easy acc, arc_easy acc_norm, peak total bytes, tokens/s); base has no memory
SEEDS = {
    "base": {0: (0.50, 0.40, 0.45, None, None)},
    "full_ft": {1: (0.70, 0.60, 0.64, 3 * GIB, 900.0), 2: (0.72, 0.62, 0.66, 3.2 * GIB, 1000.0)},
    "lora": {1: (0.66, 0.58, 0.69, 1.5 * GIB, 1500.0), 2: (0.64, 0.55, 0.69, 1.6 * GIB, 1400.0)},
    "owlore": {1: (0.74, 0.61, 0.62, 1.2 * GIB, 1200.0), 2: (0.73, 0.65, 0.60, 1.1 * GIB, 1300.0)},
}
TRAINABLE = {"base": 0, "full_ft": 134_515_008, "lora": 4_884_480, "owlore": 9_000_000}
OUTLIER_RATIOS = [1.5, 4.0, 2.5, 0.5]
MEMORY_SHARES = {"weights": 0.4, "gradients": 0.2, "optimizer": 0.3, "activations": 0.1}  # of the peak total


STEPS = 4


def loss_at(step: int, seed: int) -> float:
    return 2.0 / (step + 1) + 0.01 * seed


def active_at(step: int, seed: int) -> list[int]:
    """owlore's logged active layers (2 of 4) at `step` of seed `seed`."""
    return [step % 4, (step + seed) % 4]


def _write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def write_run(experiment_dir: Path, label: str, seed: int, numbers, status: str = "ok", method: str | None = None,
              shots: int = 0) -> Path:
    """One run folder in the results-store schema, from explicit numbers."""
    boolq, arc, arc_norm, peak, tokens_per_s = numbers
    run_dir = experiment_dir / label / f"seed-{seed}"
    method = method or label
    summary = {"method": method, "label": label, "model": "tiny-llama", "status": status, "error": None,
               "steps": 4, "final_loss": 1.0, "trainable_params": TRAINABLE.get(label, 1000),
               "tokens_per_s": tokens_per_s, "wall_s": 1.0, "method_info": {}}
    if peak is not None:
        summary |= {f"peak_mem_{k}_bytes": int(share * peak) for k, share in MEMORY_SHARES.items()}
        summary["peak_mem_total_bytes"] = int(peak)
    if method == "owlore":
        total = sum(OUTLIER_RATIOS)
        summary["method_info"] = {"outlier_ratios": OUTLIER_RATIOS,
                                  "layer_probabilities": [r / total for r in OUTLIER_RATIOS]}
    _write(run_dir / "summary.json", summary)
    if method != "base":
        metrics = [{"step": step, "loss": loss_at(step, seed), "lr": 1e-4, "tokens": 100,
                    **({"active_layers": active_at(step, seed)} if method == "owlore" else {})}
                   for step in range(STEPS)]
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in metrics))
    if status == "ok":
        rows = [{"task": "boolq", "metric": "acc", "value": boolq, "stderr": 0.01, "n": 100, "num_fewshot": shots},
                {"task": "arc_easy", "metric": "acc", "value": arc, "stderr": 0.01, "n": 100, "num_fewshot": shots},
                {"task": "arc_easy", "metric": "acc_norm", "value": arc_norm, "stderr": 0.01, "n": 100,
                 "num_fewshot": shots},
                {"task": "commonsense_avg", "metric": "acc", "value": (boolq + arc) / 2, "stderr": None,
                 "n": 200, "num_fewshot": shots}]
        _write(run_dir / "eval.json", {"rows": rows})
    return run_dir


def write_experiment(root: Path, name: str = "exp", seeds=SEEDS, methods=("owlore", "lora")) -> Path:
    experiment_dir = root / name
    _write(experiment_dir / "experiment.json", {"name": name, "model": "tiny-llama", "eval": {"tasks": list(TASKS)},
                                                 "methods": [{"name": m, "method": m} for m in methods]})
    for label, per_seed in seeds.items():
        for seed, numbers in per_seed.items():
            write_run(experiment_dir, label, seed, numbers)
    return experiment_dir


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    return write_experiment(tmp_path)


def expected(label: str, column: int, percent: bool = True) -> tuple[float, float, int]:
    """mean, sample std, n over the seeds of one label for one position of the SEEDS tuples."""
    values = [numbers[column] * (100 if percent else 1) for numbers in SEEDS[label].values()]
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else math.nan, len(values)


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


def test_cells_show_mean_pm_std_with_n_and_best_in_bold(experiment: Path):
    frame = display_frame(build_table([experiment])).set_index("Method")
    mean, std, n = expected("owlore", 0)
    # owlore has the best boolq, but without per-question outcomes no test tells it from the runner-up: not bold
    assert frame.loc["owlore", "boolq"] == f"{mean:.1f} ± {std:.1f} ({n})"
    mean, std, n = expected("lora", 0)
    assert frame.loc["lora", "boolq"] == f"{mean:.1f} ± {std:.1f} ({n})"
    # n = 1 without samples/: ± = half the Wilson interval from eval.json's counts, and no (n)
    assert frame.loc["base", "boolq"] == f"{100 * SEEDS['base'][0][0]:.1f} ±{wilson_half([1] * 50 + [0] * 50):.1f}"
    best_memory = min(SEEDS, key=lambda label: expected(label, 3, False)[0] if label != "base" else math.inf)
    assert frame.loc[best_memory, "Peak mem (GiB)"].startswith("**")
    assert frame.loc["full_ft", "Peak mem (GiB)"].startswith(f"{expected('full_ft', 3, False)[0] / GIB:.2f} ± ")
    best_speed = max(SEEDS, key=lambda label: expected(label, 4, False)[0] if label != "base" else -1)
    assert frame.loc[best_speed, "Tokens/s"].startswith("**")
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
    only_ok_seed = [1] * 66 + [0] * 34  # the ok seed alone: its eval.json counts, 66 of 100
    assert frame.loc["galore (1/2 oom)", "boolq"] == f"{100 * SEEDS['lora'][1][0]:.1f} ±{wilson_half(only_ok_seed):.1f}"
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


def test_pareto_front():
    points = [("a", 1.0, 50.0), ("b", 2.0, 60.0), ("c", 3.0, 55.0), ("d", 0.5, 40.0), ("e", 2.0, 45.0)]
    assert pareto_front(points) == ["d", "a", "b"]


def test_every_plot_is_a_png(experiment: Path, tmp_path: Path):
    diverged = write_run(experiment, "lisa", 1, (0, 0, 0, 2 * GIB, 800.0), status="diverged")
    (diverged / "metrics.jsonl").write_text('{"step": 0, "loss": 2.0}\n{"step": 1, "loss": 1e30}\n'
                                            '{"step": 2, "loss": NaN}\n')
    results = load_results([experiment])
    paths = write_plots(results, table_from_results(results), tmp_path / "plots")
    names = sorted(path.name for path in paths)
    assert names == ["active_layers_owlore.png", "loss.png", "memory.png", "outliers_owlore.png", "pareto.png"]
    for path in paths:
        data = path.read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 2000


@pytest.fixture
def figures(monkeypatch) -> dict:
    """file name → the matplotlib Figure each plot function hands to plots._save (which still writes the PNG)."""
    from owlore_bench.reporting import plots

    captured = {}
    save = plots._save

    def capture(figure, path):
        captured[Path(path).name] = figure
        return save(figure, path)  # savefig also draws: tick labels are final afterwards

    monkeypatch.setattr(plots, "_save", capture)
    return captured


def plotted(experiment: Path, tmp_path: Path, figures: dict) -> tuple[pd.DataFrame, dict]:
    results = load_results([experiment])
    table = table_from_results(results)
    write_plots(results, table, tmp_path / "plots")
    return table, figures


def memory_rows(table: pd.DataFrame) -> list[str]:
    """The rows with a stored memory ledger, in table order (base has none)."""
    return [label for label in table.index if all(numbers[3] is not None for numbers in SEEDS[label].values())]


def test_memory_bars_are_the_per_category_means_and_stack_to_the_table_peak(experiment, tmp_path, figures):
    table, figures = plotted(experiment, tmp_path, figures)
    axes = figures["memory.png"].axes[0]
    names = [label.get_text() for label in axes.get_xticklabels()]
    assert names == memory_rows(table) == ["full_ft", "owlore", "lora"]
    bars = {container.get_label(): container for container in axes.containers}
    assert list(bars) == list(MEMORY_SHARES)  # one bar series per ledger category, in ledger order
    stacked = [0.0] * len(names)
    for category, share in MEMORY_SHARES.items():
        for index, (name, patch) in enumerate(zip(names, bars[category].patches)):
            per_seed = [int(share * numbers[3]) for numbers in SEEDS[name].values()]
            assert patch.get_height() == pytest.approx(statistics.mean(per_seed) / GIB, rel=1e-9), (category, name)
            assert patch.get_y() == pytest.approx(stacked[index], rel=1e-9, abs=1e-12)  # stacked on the ones below
            stacked[index] += patch.get_height()
    for index, name in enumerate(names):  # the shares add up to the total: the stack top is the table's peak
        assert stacked[index] == pytest.approx(table.loc[name, ("peak_mem_bytes", "mean")] / GIB, rel=1e-6)
    totals = axes.collections[0].get_offsets()[:, 1]  # the "peak total" markers
    assert list(totals) == pytest.approx([table.loc[name, ("peak_mem_bytes", "mean")] / GIB for name in names])
    assert axes.get_ylabel() == "GiB"


def test_loss_plot_has_one_mean_curve_per_trained_method(experiment, tmp_path, figures):
    table, figures = plotted(experiment, tmp_path, figures)
    axes = figures["loss.png"].axes[0]
    trained = [label for label in table.index if label != "base"]  # base has no metrics.jsonl
    assert sorted(trained) == sorted(label for label in SEEDS if label != "base")
    assert [line.get_label() for line in axes.lines] == trained
    for line, label in zip(axes.lines, trained):
        assert list(line.get_xdata()) == list(range(STEPS))
        expected = [statistics.mean(loss_at(step, seed) for seed in SEEDS[label]) for step in range(STEPS)]
        assert list(line.get_ydata()) == pytest.approx(expected), label
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("step", "training loss")
    assert [text.get_text() for text in axes.get_legend().get_texts()] == trained


def test_pareto_points_are_the_table_memory_and_avg(experiment, tmp_path, figures):
    table, figures = plotted(experiment, tmp_path, figures)
    axes = figures["pareto.png"].axes[0]
    names = memory_rows(table)
    points = axes.containers[0].lines[0]  # the errorbar's data line
    assert list(points.get_xdata()) == pytest.approx([table.loc[n, ("peak_mem_bytes", "mean")] / GIB for n in names])
    assert list(points.get_ydata()) == pytest.approx([table.loc[n, ("Avg", "mean")] for n in names])
    lines = {line.get_label(): line for line in axes.lines}
    front = pareto_front([(n, table.loc[n, ("peak_mem_bytes", "mean")], table.loc[n, ("Avg", "mean")])
                          for n in names])
    assert list(lines["Pareto front"].get_ydata()) == pytest.approx([table.loc[n, ("Avg", "mean")] for n in front])
    assert list(lines["base (no fine-tuning)"].get_ydata()) == pytest.approx([table.loc["base", ("Avg", "mean")]] * 2)
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("peak memory (GiB)", "Avg accuracy (%)")


def test_outlier_and_active_layer_plots_show_the_stored_numbers(experiment, tmp_path, figures):
    _, figures = plotted(experiment, tmp_path, figures)
    bars_axes, probability_axes = figures["outliers_owlore.png"].axes[:2]
    assert [patch.get_height() for patch in bars_axes.containers[0].patches] == pytest.approx(OUTLIER_RATIOS)
    probabilities = probability_axes.lines[0].get_ydata()
    assert list(probabilities) == pytest.approx([r / sum(OUTLIER_RATIOS) for r in OUTLIER_RATIOS])
    assert (bars_axes.get_xlabel(), bars_axes.get_ylabel()) == ("layer", "outlier ratio (%)")
    image = figures["active_layers_owlore.png"].axes[0].images[0].get_array()
    seeds = list(SEEDS["owlore"])
    expected = [[sum(layer in active_at(step, seed) for seed in seeds) / len(seeds) for step in range(STEPS)]
                for layer in range(len(OUTLIER_RATIOS))]
    np.testing.assert_allclose(image, expected)
    assert set(figures) == {"loss.png", "memory.png", "pareto.png", "outliers_owlore.png",
                            "active_layers_owlore.png"}


def test_cli_writes_tables_and_plots_and_rejects_empty_dirs(experiment: Path, tmp_path: Path):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-m", "owlore_bench.cli", "report", str(experiment), "--out",
                           str(tmp_path / "report"), "--delta", "--metric", "acc_norm"], capture_output=True,
                          text=True, cwd=REPO_ROOT, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "| owlore" in done.stdout and "acc_norm" in done.stdout
    written = {path.name for path in (tmp_path / "report").iterdir()}
    assert {"table.md", "table.csv", "table.tex", "loss.png", "memory.png", "pareto.png"} <= written
    empty = tmp_path / "empty"
    empty.mkdir()
    done = subprocess.run([sys.executable, "-m", "owlore_bench.cli", "report", str(empty)], capture_output=True,
                          text=True, cwd=REPO_ROOT, env=env, timeout=120)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "no runs" in done.stderr and "Traceback" not in done.stderr


def write_eval(experiment_dir: Path, label: str, seed: int, scores: dict[str, float],
               groups: dict[str, list[str]] | None = None) -> None:
    """A finished run whose eval.json holds one acc row per task; `groups`: group row → its member tasks."""
    run_dir = write_run(experiment_dir, label, seed, SEEDS["full_ft"][1], method=label)
    rows = [{"task": task, "metric": "acc", "value": value, "stderr": None, "n": 10, "num_fewshot": 5,
             **({"members": (groups or {})[task]} if task in (groups or {}) else {})}
            for task, value in scores.items()]
    _write(run_dir / "eval.json", {"rows": rows})


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
    _write(directory / "experiment.json", {"name": "bb", "tasks": ["bb_navigate", "bb_winowhy"]})
    write_eval(directory, "full_ft", 1, {"bb_navigate": 0.5, "bb_winowhy": 0.6, "bb_extra": 0.1})
    table = build_table([directory])
    assert list(table.attrs["tasks"]) == ["bb_navigate", "bb_winowhy"]
    assert table.loc["full_ft", ("Avg", "mean")] == pytest.approx(55.0)


def test_outlier_ratios_in_either_stored_form():
    from owlore_bench.reporting.plots import outlier_ratios

    assert outlier_ratios({"outlier_ratios": [1.0, 2.0]}) == [1.0, 2.0]
    assert outlier_ratios({"outliers": {"outlier_ratio_percent": [3.0]}, "layer_probabilities": [1.0]}) == [3.0]
    assert outlier_ratios({"layer_probabilities": [0.5, 0.5]}) == []  # LISA: probabilities, no ratios


# ---------------------------------------------------------------- intervals, paired tests, delta table, forgetting
def vector(correct: int, n: int = 100, offset: int = 0) -> list[int]:
    """0/1 outcomes of n questions: questions offset .. offset + correct - 1 (mod n) right."""
    return [1 if (i - offset) % n < correct else 0 for i in range(n)]


# label → seed → (boolq outcomes, arc_easy outcomes); owlore's boolq right answers include lora's (14 discordant
# questions, all owlore's: McNemar p = 2 * 0.5**14), full_ft's arc_easy includes lora's (2 discordant: p = 0.5)
OUTCOMES = {"base": {0: (vector(50), vector(40))}, "full_ft": {0: (vector(60), vector(60))},
            "lora": {0: (vector(66), vector(58))}, "owlore": {0: (vector(80), vector(57, offset=3))}}


def write_outcomes(root: Path, outcomes=OUTCOMES, name: str = "paired") -> Path:
    """An experiment whose runs keep per-question outcomes (samples/) agreeing with their eval.json."""
    from owlore_bench.evaluation.samples import write_samples

    directory = root / name
    _write(directory / "experiment.json", {"name": name, "eval": {"tasks": list(TASKS)},
                                           "methods": [{"name": "owlore"}, {"name": "lora"}]})
    for label, seeds in outcomes.items():
        for seed, (boolq, arc) in seeds.items():
            peak = None if label == "base" else 2 * GIB
            run_dir = write_run(directory, label, seed, (np.mean(boolq), np.mean(arc), np.mean(arc), peak, 10.0))
            write_samples(run_dir, {"boolq": [{"i": i, "t": 1, "p": x, "acc": x} for i, x in enumerate(boolq)],
                                    "arc_easy": [{"i": i, "t": 1, "p": x, "acc": x, "acc_norm": x}
                                                 for i, x in enumerate(arc)]})
    return directory


def wilson_half(outcomes: list[int]) -> float:
    low, high = scipy_wilson(outcomes)
    return (high - low) / 2


def scipy_wilson(outcomes: list[int]) -> tuple[float, float]:
    interval = stats.binomtest(sum(outcomes), len(outcomes)).proportion_ci(0.95, method="wilson")
    return 100 * interval.low, 100 * interval.high


def test_one_seed_cells_show_half_the_wilson_interval_and_the_csv_its_bounds(tmp_path: Path):
    table = build_table([write_outcomes(tmp_path)])
    frame = display_frame(table).set_index("Method")
    csv = csv_frame(table).set_index("row")
    for label, seeds in OUTCOMES.items():
        boolq = seeds[0][0]
        low, high = scipy_wilson(boolq)
        assert frame.loc[label, "boolq"].strip("*") == f"{100 * np.mean(boolq):.1f} ±{(high - low) / 2:.1f}"
        assert (csv.loc[label, "boolq_acc_0shot_ci_low"], csv.loc[label, "boolq_acc_0shot_ci_high"]) == \
            pytest.approx((low, high))
        assert csv.loc[label, "boolq_acc_0shot_questions"] == 100
        assert csv.loc[label, "avg_ci_low"] < csv.loc[label, "avg_mean"] < csv.loc[label, "avg_ci_high"]
    assert frame.loc["lora", "commonsense_avg"] == "62.0"  # a group column: no outcomes, no interval
    assert "Wilson" in render_markdown(table)


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
                                 "p_holm", "marker"]
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
    assert deltas.loc[("lora", "boolq"), "test"] == "bootstrap"


def test_forgetting_column_from_forgetting_json(experiment: Path):
    assert "Forgetting (ΔCE)" not in display_frame(build_table([experiment])).columns
    _write(experiment / "owlore" / "seed-1" / "forgetting.json",
           {"base_ce": 3.0, "trained_ce": 3.031, "delta_ce": 0.031, "ci95": [0.020, 0.042], "tokens": 4096,
            "text": "built-in"})
    for seed, delta in ((1, 0.05), (2, 0.07)):
        _write(experiment / "lora" / f"seed-{seed}" / "forgetting.json",
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


def write_judgments(run_dir: Path, scores: dict[tuple[int, int], int], slug: str = "hf-judge") -> None:
    rows = [{"question_id": q, "model": "m", "turn": turn, "score": score} for (q, turn), score in scores.items()]
    path = run_dir / "mt_bench" / "judgments" / f"{slug}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_mt_bench_difference_pairs_questions_and_keeps_turns_together(experiment: Path):
    from owlore_bench.reporting.mt_bench import score_difference

    results = load_results([experiment])
    better = {(q, turn): 8 if q < 8 else 4 for q in range(16) for turn in (1, 2)}
    worse = {(q, turn): 4 for q in range(16) for turn in (1, 2)}
    write_judgments(results.rows["owlore"][0].path, {**better, (15, 2): -1})  # one unparsed judgment
    write_judgments(results.rows["owlore"][1].path, better)
    for run in results.rows["lora"]:
        write_judgments(run.path, worse)
    difference = score_difference(results.rows["owlore"], results.rows["lora"], "hf-judge")
    expected = (8 * 8 * 2 * 2 + 4 * (8 * 2 * 2 - 1)) / (16 * 2 * 2 - 1) - 4.0  # over every valid judgment
    assert difference.points == pytest.approx(expected)
    assert difference.low > 0 and difference.p_value < 0.05 and difference.n == 16
    assert score_difference(results.rows["lora"], results.rows["lora"], "hf-judge").points == 0.0
    assert score_difference(results.rows["owlore"], results.rows["full_ft"], "hf-judge") is None  # not judged


def test_mt_bench_repeats_count_once_with_their_median(experiment: Path):
    from owlore_bench.reporting.mt_bench import question_scores

    run = load_results([experiment]).rows["base"][0]
    rows = [{"question_id": 1, "model": "m", "turn": 1, "score": s, "repeat": r} for r, s in enumerate((2, 9, 3))]
    rows.append({"question_id": 1, "model": "m", "turn": 2, "score": 6, "repeat": 0})
    path = run.path / "mt_bench" / "judgments" / "hf-judge.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert question_scores([run], "hf-judge") == {1: (3 + 6, 2)}  # turn 1: median of 2, 9, 3


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


def test_caption_states_the_lm_eval_protocol_the_runs_recorded(tmp_path):
    directory = tmp_path / "proto"
    run_dir = write_run(directory, "full_ft", 0, SEEDS["full_ft"][1])
    evaluation = json.loads((run_dir / "eval.json").read_text())
    evaluation["protocol"] = {"lm_eval": "0.4.13", "apply_chat_template": False,
                              "tasks": {"boolq": {"version": 2.0, "num_fewshot": 0}}}
    _write(run_dir / "eval.json", evaluation)
    assert "Evaluated with lm-eval 0.4.13, 0-shot, no chat template." in render_markdown(build_table([directory]))
