"""The accuracy-against-memory plot (pareto.png): each row's Avg with its 95 % interval bar, and a front drawn
only through rows a paired test separates (deltas.separated_front: each step up is a row whose Avg beats the
previous front row's at p < 0.05); rows it cannot tell from the front are drawn hollow. Memory in GiB (2**30
bytes), with ± std over seeds where there are several.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from owlore_bench.reporting.loading import AVG, BASE_LABEL, GIB


def pareto_front(points: list[tuple[str, float, float]]) -> list[str]:
    """Names of the (name, memory, accuracy) points no other point beats on both (less memory, more accuracy),
    in order of increasing memory: the front of the point estimates, before any test."""
    front, best_accuracy = [], -math.inf
    for name, _, accuracy in sorted(points, key=lambda p: (p[1], -p[2])):
        if accuracy > best_accuracy:
            front.append(name)
            best_accuracy = accuracy
    return front


def accuracy_bars(usable: pd.DataFrame) -> np.ndarray:
    """2 x rows: the distances below and above each Avg to its 95 % interval (table.csv's avg_ci_low/high: Wilson
    or bootstrap over questions for one seed, seeds then questions for several); ± std over seeds where a row has
    no interval, 0 where it has neither."""
    mean = usable[(AVG, "mean")]
    if (AVG, "ci_low") in usable.columns:
        low, high = usable[(AVG, "ci_low")], usable[(AVG, "ci_high")]
    else:
        low = high = pd.Series(math.nan, index=usable.index)
    std = usable[(AVG, "std")].fillna(0)
    below = (mean - low).where(low.notna(), std)
    above = (high - mean).where(high.notna(), std)
    return np.vstack([below.to_numpy(dtype=float), above.to_numpy(dtype=float)])


def pareto_figure(table: pd.DataFrame) -> Figure | None:
    """Avg accuracy (percent) against peak memory (GiB) per row with interval bars, the separated front as a
    line (table.attrs['pareto_front']; no line when no two rows pair) and the rows off it hollow. Rows without
    memory (the base model: a dashed line) or without Avg are left out."""
    if (AVG, "mean") not in table.columns:
        return None
    usable = table[table[(AVG, "mean")].notna() & table[("peak_mem_bytes", "mean")].notna()]
    if usable.empty:
        return None
    memory, accuracy = usable[("peak_mem_bytes", "mean")] / GIB, usable[(AVG, "mean")]
    front = [name for name in table.attrs.get("pareto_front") or [] if name in usable.index]
    figure = Figure(figsize=(6.5, 4.5))
    axes = figure.add_subplot()
    on_front = usable.index.isin(front)
    bars = accuracy_bars(usable)
    for chosen, style in ((on_front, {"fmt": "o", "color": "tab:red"}),
                          (~on_front, {"fmt": "o", "color": "tab:blue", "markerfacecolor": "white"})):
        if chosen.any():
            axes.errorbar(memory[chosen], accuracy[chosen], yerr=bars[:, chosen],
                          xerr=(usable[("peak_mem_bytes", "std")][chosen] / GIB).fillna(0), capsize=3, **style)
    for name in usable.index:
        status = usable.loc[name, ("status", "")]
        axes.annotate(name if status == "ok" else f"{name} ({status})", (memory[name], accuracy[name]),
                      textcoords="offset points", xytext=(5, 5), fontsize="small")
    for name in table.index[(table[("label", "")] == BASE_LABEL) & table[(AVG, "mean")].notna()]:
        axes.axhline(table.loc[name, (AVG, "mean")], color="gray", linestyle="--", linewidth=1,
                     label=f"{name} (no fine-tuning)")
    if front:
        label = ("front: each step separated (p < 0.05)" if len(front) > 1
                 else "front: no row separated from the cheapest")
        axes.plot(memory[front], accuracy[front], "-", color="tab:red", label=label)
    axes.set(xlabel="peak memory (GiB)", ylabel=f"{AVG} accuracy (%)", title="Accuracy vs peak memory")
    if axes.get_legend_handles_labels()[1]:
        axes.legend(fontsize="small", loc="best")
    axes.grid(alpha=0.3)
    return figure


def pareto_caption(table: pd.DataFrame) -> str:
    """What the plot shows, including whether a front could be tested."""
    text = ("Avg accuracy (%) against peak memory (GiB); bars: the Avg's 95 % interval (one seed: bootstrap over "
            "questions, which questions were asked; several: seeds then questions) and ± std of memory over seeds; "
            "dashed: the base model (not fine-tuned, no memory). ")
    front = table.attrs.get("pareto_front")
    if front is None:
        return text + "No front: no two rows have paired per-question outcomes to test."
    return text + (f"Red, joined: the front, from the row with the least memory, each next point the cheapest row "
                   f"whose Avg beats the previous front point at p < 0.05 (the delta table's paired Avg test, "
                   f"unadjusted); {len(front)} row(s). Hollow: rows not separated from the front below them.")
