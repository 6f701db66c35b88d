"""FastChat's MT-Bench figure: one polygon per method on a radar of the 8 category means (judge scale 1-10).

matplotlib object API with the Agg canvas (no pyplot state, no display); the PNG is written through a temp file
and renamed. Categories run in FastChat's order (Writing, Roleplay, Reasoning, Math, Coding, Extraction, STEM,
Humanities); a category a method has no score for is drawn at 0 and marked 'n/a' in its legend entry.
"""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.figure import Figure

from owlore_bench.mtbench.questions import CATEGORIES
from owlore_bench.results import write_png_atomic

LABELS = {"stem": "STEM"}


def plot_category_radar(scores_by_method: dict[str, dict[str, float | None]], path: str | Path,
                        title: str) -> Path:
    """Draw {method: {category: mean score}} to `path` (PNG); returns the path. Put the judge in `title`."""
    return write_png_atomic(category_radar_figure(scores_by_method, title), Path(path))


def category_radar_figure(scores_by_method: dict[str, dict[str, float | None]], title: str) -> Figure:
    """The radar of {method: {category: mean score}} as a Figure (plot_category_radar writes it as a PNG)."""
    names = [name for name in CATEGORIES if any(name in scores for scores in scores_by_method.values())]
    names += sorted({name for scores in scores_by_method.values() for name in scores} - set(names))
    if len(names) < 3:
        names += [name for name in CATEGORIES if name not in names][: 3 - len(names)]  # a radar needs 3 axes
    angles = [2 * math.pi * k / len(names) for k in range(len(names))]
    figure = Figure(figsize=(6.4, 6.4))
    axes = figure.add_subplot(projection="polar")
    axes.set_theta_offset(math.pi / 2)
    axes.set_theta_direction(-1)
    for method, scores in scores_by_method.items():
        values = [scores.get(name) for name in names]
        missing = sum(value is None for value in values)
        values = [0.0 if value is None else float(value) for value in values]
        label = method + (f" ({missing} n/a)" if missing else "")
        axes.plot(angles + angles[:1], values + values[:1], linewidth=1.5, label=label)
        axes.fill(angles + angles[:1], values + values[:1], alpha=0.08)
    axes.set_xticks(angles)
    axes.set_xticklabels([LABELS.get(name, name.capitalize()) for name in names])
    axes.set_ylim(0, 10)
    axes.set_yticks([2, 4, 6, 8, 10])
    axes.set_title(title, pad=36, fontsize=10)
    axes.legend(loc="upper left", bbox_to_anchor=(1.05, 1.0), fontsize=9)
    return figure
