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
    assert frame.loc["owlore", "boolq"] == f"**{mean:.1f} ± {std:.1f} ({n})**"  # owlore has the best boolq
    mean, std, n = expected("lora", 0)
    assert frame.loc["lora", "boolq"] == f"{mean:.1f} ± {std:.1f} ({n})"
    assert frame.loc["base", "boolq"] == f"{100 * SEEDS['base'][0][0]:.1f}"  # n = 1: no ± and no (n)
    best_memory = min(SEEDS, key=lambda label: expected(label, 3, False)[0] if label != "base" else math.inf)
    assert frame.loc[best_memory, "Peak mem (GiB)"].startswith("**")
    assert frame.loc["full_ft", "Peak mem (GiB)"].startswith(f"{expected('full_ft', 3, False)[0] / GIB:.2f} ± ")
    best_speed = max(SEEDS, key=lambda label: expected(label, 4, False)[0] if label != "base" else -1)
    assert frame.loc[best_speed, "Tokens/s"].startswith("**")
    assert frame.loc["base", "Peak mem (GiB)"] == "—"
    assert not any(frame["Trainable params"].str.startswith("**"))  # no "better" direction for params
    assert sum(frame["boolq"].str.startswith("**")) == 1


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
    assert frame.loc["galore (1/2 oom)", "boolq"] == f"{100 * SEEDS['lora'][1][0]:.1f}"  # only the ok seed
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
