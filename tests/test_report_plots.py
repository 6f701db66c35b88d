"""Plots from synthetic result folders (tests/report_helpers.py): every plot is a PNG, and each figure shows the
stored numbers (captured from the matplotlib Figure each plot function saves)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_helpers import (
    GIB,
    MEMORY_SHARES,
    OUTCOMES,
    OUTLIER_RATIOS,
    PNG_SIGNATURE,
    REPO_ROOT,
    SEEDS,
    STEPS,
    active_at,
    loss_at,
    vector,
    write_experiment,
    write_outcomes,
    write_run,
)

from owlore_bench.reporting.loading import load_results
from owlore_bench.reporting.pareto import pareto_caption, pareto_front
from owlore_bench.reporting.plots import line_style, write_plots
from owlore_bench.reporting.tables import table_from_results


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    return write_experiment(tmp_path)


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


def test_pareto_points_are_the_table_memory_and_avg_and_without_outcomes_no_front(experiment, tmp_path, figures):
    table, figures = plotted(experiment, tmp_path, figures)
    axes = figures["pareto.png"].axes[0]
    names = memory_rows(table)
    points = axes.containers[0].lines[0]  # the errorbar's data line: every row hollow, none on a front
    assert list(points.get_xdata()) == pytest.approx([table.loc[n, ("peak_mem_bytes", "mean")] / GIB for n in names])
    assert list(points.get_ydata()) == pytest.approx([table.loc[n, ("Avg", "mean")] for n in names])
    assert points.get_markerfacecolor() == "white" and len(axes.containers) == 1
    lines = {line.get_label(): line for line in axes.lines}
    assert not [label for label in lines if label.startswith("front")]  # no paired outcomes: nothing to test
    assert table.attrs["pareto_front"] is None and "No front" in pareto_caption(table)
    assert list(lines["base (no fine-tuning)"].get_ydata()) == pytest.approx([table.loc["base", ("Avg", "mean")]] * 2)
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("peak memory (GiB)", "Avg accuracy (%)")
    # several seeds and no outcomes: the bars are ± the std of Avg over seeds
    np.testing.assert_allclose(vertical_bars(axes.containers[0]),
                               [(table.loc[n, ("Avg", "mean")] - table.loc[n, ("Avg", "std")],
                                 table.loc[n, ("Avg", "mean")] + table.loc[n, ("Avg", "std")]) for n in names])


def vertical_bars(container) -> list[tuple[float, float]]:
    """(bottom, top) of each vertical error bar of an errorbar container."""
    for collection in container.lines[2]:
        segments = collection.get_segments()
        if all(s[0][0] == s[1][0] for s in segments) and any(s[0][1] != s[1][1] for s in segments):
            return [(min(s[0][1], s[1][1]), max(s[0][1], s[1][1])) for s in segments]
    raise AssertionError("no vertical error bars")


def test_pareto_bars_are_the_avg_intervals_and_the_front_steps_only_where_a_test_separates(tmp_path, figures):
    """lora (1 GiB, Avg 62) -> owlore (2 GiB, 68.5: boolq 14 discordant questions all its own) is a separated
    step; full_ft (3 GiB, 60) is below the front. Moving owlore's answers to lora's makes the step untestable
    as a gain: the front stops at lora."""
    directory = write_outcomes(tmp_path, peaks={"lora": GIB, "owlore": 2 * GIB, "full_ft": 3 * GIB})
    table, figures = plotted(directory, tmp_path, figures)
    assert table.attrs["pareto_front"] == ["lora", "owlore"]
    axes = figures["pareto.png"].axes[0]
    front = next(line for line in axes.lines if line.get_label().startswith("front"))
    assert list(front.get_ydata()) == pytest.approx([62.0, 68.5])
    on_front, off_front = axes.containers  # points in table order: owlore before lora
    assert list(on_front.lines[0].get_ydata()) == pytest.approx([68.5, 62.0])
    assert list(off_front.lines[0].get_ydata()) == pytest.approx([60.0])  # full_ft, hollow
    for container, names in ((on_front, ["owlore", "lora"]), (off_front, ["full_ft"])):
        np.testing.assert_allclose(vertical_bars(container),
                                   [(table.loc[n, ("Avg", "ci_low")], table.loc[n, ("Avg", "ci_high")]) for n in names])
    close = {**OUTCOMES, "owlore": {0: (vector(67), vector(58))}}  # Avg 62.5 against lora's 62: no step
    table = table_from_results(load_results([write_outcomes(tmp_path, close, name="close",
                                                            peaks={"lora": GIB, "owlore": 2 * GIB})]))
    assert table.attrs["pareto_front"] == ["lora"]
    assert "1 row(s)" in pareto_caption(table)


def test_loss_plot_tells_19_rows_apart_with_the_legend_outside(tmp_path, figures):
    directory = tmp_path / "zoo"
    labels = [f"method_{k:02d}" for k in range(19)]
    for label in labels:
        write_run(directory, label, 0, SEEDS["full_ft"][1])
    _, figures = plotted(directory, tmp_path, figures)
    axes = figures["loss.png"].axes[0]
    styles = [(line.get_color(), line.get_linestyle()) for line in axes.lines]
    assert len(styles) == 19 and len(set(styles)) == 19  # no two rows share a colour and a line style
    figure = figures["loss.png"]
    legend_box = axes.get_legend().get_window_extent(figure.canvas.get_renderer())
    assert legend_box.x0 >= axes.get_window_extent().x1  # right of the axes: it covers no curve
    assert len(line_style_pairs := {tuple(line_style(k).values()) for k in range(20)}) == 20, line_style_pairs


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


def test_outlier_ratios_in_either_stored_form():
    from owlore_bench.reporting.plots import outlier_ratios

    assert outlier_ratios({"outlier_ratios": [1.0, 2.0]}) == [1.0, 2.0]
    assert outlier_ratios({"outliers": {"outlier_ratio_percent": [3.0]}, "layer_probabilities": [1.0]}) == [3.0]
    assert outlier_ratios({"layer_probabilities": [0.5, 0.5]}) == []  # LISA: probabilities, no ratios
