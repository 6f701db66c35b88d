"""Comparison plots (PNG) from the results store: training loss, memory breakdown, accuracy vs memory (Pareto),
and for layer-sampling methods the outlier ratios / sampling probabilities and which layers were active.

Uses matplotlib's object API (Figure + Agg canvas, no pyplot): no global state, no display needed.
Each plot_<name> writes the Figure that <name>_figure builds (the HTML report embeds those same figures as SVG).
Memory is read in bytes and shown in GiB (2**30 bytes).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from owlore_bench.memory.ledger import CATEGORIES
from owlore_bench.reporting.loading import GIB, Results, Run
from owlore_bench.reporting.pareto import pareto_figure
from owlore_bench.reporting.tables import status_text
from owlore_bench.results import write_png_atomic

DPI = 120


def _save(figure: Figure, path: Path) -> Path:
    """Every plot is written here (tests capture the figures through it)."""
    return write_png_atomic(figure, path, dpi=DPI)


def file_stem(name: str) -> str:
    """A row name as a file-name piece: 'exp/owlore-r8' → 'exp_owlore-r8'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "row"


def _status_suffix(runs: list[Run]) -> str:
    """'' for an all-ok row, else ' (diverged)' or ' (1/2 oom)', as in the table."""
    status = status_text(runs)
    return "" if status == "ok" else f" ({status})"


def _loss_curves(runs: list[Run]) -> pd.DataFrame | None:
    """step → mean, min, max of the loss over the seeds that logged that step."""
    frames = [pd.DataFrame(run.metrics, columns=["step", "loss"]) for run in runs if run.metrics]
    if not frames:
        return None
    steps = pd.concat(frames).astype(float)
    return steps.groupby("step")["loss"].agg(["mean", "min", "max"])


def plot_loss(results: Results, path: Path) -> Path | None:
    """loss_figure as a PNG at `path`; None when no run logged a loss."""
    figure = loss_figure(results)
    return None if figure is None else _save(figure, path)


LINE_STYLES = ("-", "--", ":", "-.")  # with the 10 tab10 colours: 40 distinct (colour, line style) pairs
LEGEND_OUTSIDE = 6  # more lines than this: the legend goes to the right of the axes, off the data


def line_style(index: int) -> dict[str, str]:
    """The index-th row's curve: tab10 colour index % 10, line style index // 10, so 19 methods (the zoo) get 19
    different (colour, style) pairs."""
    return {"color": f"C{index % 10}", "linestyle": LINE_STYLES[(index // 10) % len(LINE_STYLES)]}


def loss_figure(results: Results) -> Figure | None:
    """Training loss per row: mean over seeds, shaded min–max; each row its own colour and line style, the legend
    outside the axes when there are many rows. The y range follows the ok rows, so one diverged run does not
    flatten every other curve."""
    curves = {name: (runs, found) for name, runs in results.rows.items() if (found := _loss_curves(runs)) is not None}
    if not curves:
        return None
    many = len(curves) > LEGEND_OUTSIDE
    figure = Figure(figsize=(9.5 if many else 7, 4.5 + (0.12 * len(curves) if many else 0)))
    axes = figure.add_subplot()
    ok_values = []
    for index, (name, (runs, found)) in enumerate(curves.items()):
        style = line_style(index)
        axes.plot(found.index, found["mean"], label=f"{name}{_status_suffix(runs)}", linewidth=1.4, **style)
        if len(runs) > 1:
            axes.fill_between(found.index, found["min"], found["max"], color=style["color"], alpha=0.2)
        if all(run.status == "ok" for run in runs):
            ok_values += [v for v in found[["min", "max"]].to_numpy().ravel() if math.isfinite(v)]
    if ok_values:
        low, high = min(ok_values), max(ok_values)
        margin = 0.05 * (high - low or 1.0)
        axes.set_ylim(low - margin, high + margin)
    axes.set(xlabel="step", ylabel="training loss", title="Training loss (mean over seeds, shaded min–max)")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if many:
        axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    else:
        axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    return figure


def _memory_means(runs: list[Run]) -> dict[str, float] | None:
    """Mean over seeds of each peak_mem_<category>_bytes (bytes); None when the runs stored no memory."""
    stored = [run.summary for run in runs if run.summary.get("peak_mem_total_bytes") is not None]
    if not stored:
        return None
    return {category: float(np.mean([s.get(f"peak_mem_{category}_bytes") or 0 for s in stored]))
            for category in (*CATEGORIES, "total")}


def plot_memory(results: Results, path: Path) -> Path | None:
    """memory_figure as a PNG at `path`; None when no run stored its memory."""
    figure = memory_figure(results)
    return None if figure is None else _save(figure, path)


def memory_figure(results: Results) -> Figure | None:
    """Stacked bars per row of the peak weights / gradients / optimizer / activations (GiB), with the peak
    total (which can be below the stack: the categories peak at different moments) marked on top."""
    means = {f"{name}{_status_suffix(runs)}": m for name, runs in results.rows.items()
             if (m := _memory_means(runs)) is not None}
    if not means:
        return None
    figure = Figure(figsize=(max(5, 1.1 * len(means) + 2), 4.5))
    axes = figure.add_subplot()
    names = list(means)
    bottom = np.zeros(len(names))
    for category in CATEGORIES:
        heights = np.array([means[name][category] / GIB for name in names])
        axes.bar(names, heights, bottom=bottom, label=category)
        bottom += heights
    totals = [means[name]["total"] / GIB for name in names]
    axes.scatter(names, totals, marker="_", s=400, color="black", zorder=3, label="peak total")
    for x, total in enumerate(totals):
        axes.annotate(f"{total:.2f}", (x, max(total, bottom[x])), textcoords="offset points", xytext=(0, 4),
                      ha="center", fontsize="small")
    axes.set(ylabel="GiB", title="Peak memory by category (mean over seeds)")
    axes.tick_params(axis="x", labelrotation=30)
    axes.legend(fontsize="small")
    figure.tight_layout()
    return figure


def plot_pareto(table: pd.DataFrame, path: Path) -> Path | None:
    """pareto.pareto_figure as a PNG at `path`; None when no row has both Avg and memory."""
    figure = pareto_figure(table)
    return None if figure is None else _save(figure, path)


def outlier_ratios(method_info: dict | None) -> list[float]:
    """Layer outlier ratios (percent) from summary.json's method_info: 'outlier_ratios', or the layer-sampling
    methods' 'outliers': {'outlier_ratio_percent': [...]}; [] when the run has none."""
    info = method_info or {}
    nested = info.get("outliers") if isinstance(info.get("outliers"), dict) else {}
    return list(info.get("outlier_ratios") or nested.get("outlier_ratio_percent") or nested.get("outlier_ratios")
                or [])


def plot_outlier_ratios(name: str, runs: list[Run], path: Path) -> Path | None:
    """outliers_figure as a PNG at `path`; None when no run stored outlier ratios."""
    figure = outliers_figure(name, runs)
    return None if figure is None else _save(figure, path)


def outliers_figure(name: str, runs: list[Run]) -> Figure | None:
    """Bars: layerwise outlier ratio (percent); lines: the per-draw sampling probability p_l and, when stored,
    each layer's inclusion probability per resampling (first seed that has them)."""
    info = next((run.summary.get("method_info") for run in runs if outlier_ratios(run.summary.get("method_info"))),
                None)
    if info is None:
        return None
    ratios = outlier_ratios(info)
    figure = Figure(figsize=(max(6, 0.25 * len(ratios) + 2), 4))
    axes = figure.add_subplot()
    handles = [axes.bar(range(len(ratios)), ratios, color="tab:blue", label="outlier ratio (%)")]
    axes.set(xlabel="layer", ylabel="outlier ratio (%)", title=f"{name}: layer outlier ratios and sampling "
                                                                 f"probabilities")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    lines = {"layer_probabilities": ("sampling probability p", "tab:orange"),
             "inclusion_probabilities": ("inclusion probability", "tab:green")}
    if any(info.get(key) for key in lines):
        twin = axes.twinx()
        for key, (label, color) in lines.items():
            if info.get(key):
                handles += twin.plot(range(len(info[key])), info[key], "o-", color=color, markersize=3, label=label)
        twin.set(ylabel="probability", ylim=(0, None))
    axes.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3, fontsize="small")
    figure.tight_layout()
    return figure


def active_layer_matrix(runs: list[Run], layers: int = 0) -> tuple[np.ndarray, list[int], int] | None:
    """(layers × steps matrix of the fraction of seeds in which each layer was active, the steps, the number of
    seeds that logged active_layers), or None when none did. `layers` is a lower bound on the layer count."""
    per_run = [{row["step"]: row["active_layers"] for row in run.metrics if row.get("active_layers") is not None}
               for run in runs]
    per_run = [steps for steps in per_run if steps]
    if not per_run:
        return None
    steps = sorted({step for run_steps in per_run for step in run_steps})
    layers = max([layers, *(max(active, default=-1) + 1 for s in per_run for active in s.values())])
    counts = np.zeros((layers, len(steps)))
    column = {step: index for index, step in enumerate(steps)}
    for run_steps in per_run:
        for step, active in run_steps.items():
            counts[list(active), column[step]] += 1
    return counts / len(per_run), steps, len(per_run)


def plot_active_layers(name: str, runs: list[Run], path: Path) -> Path | None:
    """active_layers_figure as a PNG at `path`; None when no run logged active layers."""
    figure = active_layers_figure(name, runs)
    return None if figure is None else _save(figure, path)


def active_layers_figure(name: str, runs: list[Run]) -> Figure | None:
    """Heatmap layer × step of which layers were trained (fraction of seeds; 1 = active in every seed)."""
    ratios = next((outlier_ratios(run.summary.get("method_info")) for run in runs), [])
    matrix = active_layer_matrix(runs, len(ratios))
    if matrix is None:
        return None
    counts, steps, seeds = matrix
    figure = Figure(figsize=(7, max(3, 0.15 * counts.shape[0] + 1.5)))
    axes = figure.add_subplot()
    image = axes.imshow(counts, aspect="auto", origin="lower", cmap="Greys", vmin=0, vmax=1, interpolation="nearest",
                        extent=(steps[0] - 0.5, steps[-1] + 0.5, -0.5, counts.shape[0] - 0.5))
    figure.colorbar(image, ax=axes, label=f"fraction of seeds active (n={seeds})")
    axes.set(xlabel="step", ylabel="layer", title=f"{name}: active layers per step")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    return figure


def write_plots(results: Results, table: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Every plot the data allows, as PNGs in out_dir: loss.png, memory.png, pareto.png,
    outliers_<row>.png and active_layers_<row>.png. Returns the written paths."""
    out_dir = Path(out_dir)
    written = [plot_loss(results, out_dir / "loss.png"), plot_memory(results, out_dir / "memory.png"),
               plot_pareto(table, out_dir / "pareto.png")]
    for name, runs in results.rows.items():
        written.append(plot_outlier_ratios(name, runs, out_dir / f"outliers_{file_stem(name)}.png"))
        written.append(plot_active_layers(name, runs, out_dir / f"active_layers_{file_stem(name)}.png"))
    return [path for path in written if path is not None]
