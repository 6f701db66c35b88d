"""The memory command's figure: one bar per method, its estimated bytes stacked by ledger category."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from owlore_bench.memory.ledger import CATEGORIES


def memory_stacked_bar(rows: list[dict[str, Any]], path: Path, title: str, unit: str, size: int) -> None:
    """PNG at `path`: one bar per row (`method`), `est_<category>_bytes` / `size` stacked, the axis in `unit`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(1.4 * len(rows) + 3, 4.5))
    bottoms = [0.0] * len(rows)
    names = [row["method"] for row in rows]
    for category in CATEGORIES:
        heights = [row[f"est_{category}_bytes"] / size for row in rows]
        axes.bar(names, heights, bottom=bottoms, label=category)
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    axes.set_ylabel(f"estimated {unit}")
    axes.set_title(title, fontsize=9)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
