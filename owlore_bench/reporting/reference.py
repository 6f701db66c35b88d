"""A new run's table next to a committed reference table: each cell with its difference from the reference.

Memory comes from the per-step ledger and is deterministic for a given config and library versions, so it should
match to the byte; accuracy and tokens/s depend on the machine (and accuracy on CPU vs GPU numerics), so they
are shown with their difference (percentage points) and ratio.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from owlore_bench.reporting.loading import GIB
from owlore_bench.reporting.render import caption, format_number, value_columns
from owlore_bench.reporting.tables import build_table

MIB = 2**20  # bytes


def _difference(mine: float, reference: float, kind: str) -> str:
    """The reference-relative part of a cell: points for accuracy, bytes for memory, a ratio for speed, nats for
    forgetting."""
    if kind == "gib":
        return "= to the byte" if mine == reference else f"{(mine - reference) / MIB:+,.1f} MiB"
    if kind == "count":
        return "=" if mine == reference else f"{mine - reference:+,.0f}"
    if kind == "rate":
        return f"×{mine / reference:.2f}" if reference else "ref 0"
    if kind == "ce":
        return f"{mine - reference:+.3f}"
    return f"{mine - reference:+.1f}"


def comparison_frame(table: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Strings: one row per method of `table`, each value column 'mine (difference from the reference)'.

    Both are numbers tables of report.table_from_results; a row or column the reference lacks says so.
    """
    lines = []
    for name, row in table.iterrows():
        line = {"Method": name}
        for key, (title, kind, _) in value_columns(table).items():
            mine = row.get((key, "mean"), math.nan)
            ref = reference.loc[name].get((key, "mean"), math.nan) if name in reference.index else math.nan
            if math.isnan(mine):
                line[title] = "—" if row[("ok_runs", "")] else row[("status", "")]
            elif math.isnan(ref):
                line[title] = f"{format_number(mine, kind)} (no reference)"
            else:
                line[title] = f"{format_number(mine, kind)} ({_difference(mine, ref, kind)})"
        lines.append(line)
    return pd.DataFrame(lines)


def render_comparison(table: pd.DataFrame, reference: pd.DataFrame, reference_dir: str | Path) -> str:
    """Markdown: a heading naming the reference folder, what the differences mean, and the comparison table."""
    frame = comparison_frame(table, reference)
    align = ["left"] + ["right"] * (len(frame.columns) - 1)
    return (f"Compared with the committed reference {reference_dir}: each cell is this run's value, then its "
            f"difference from the reference (accuracy: percentage points; memory: bytes, expected '= to the "
            f"byte' for the same config and library versions; tokens/s: ratio, machine-dependent). Memory in "
            f"GiB = {GIB} bytes. Reference caption: {caption(reference)}\n\n"
            f"{frame.to_markdown(index=False, disable_numparse=True, colalign=align)}\n")


def reference_comparison(table: pd.DataFrame, reference_dir: Path) -> str:
    """`table` against the results stored in `reference_dir`, on the same metric and task columns; a short note
    where no reference is stored there (e.g. a wheel install, which ships no results/)."""
    if not (reference_dir / "experiment.json").is_file():
        return f"(no committed reference at {reference_dir}: nothing to compare with)"
    tasks = list(table.attrs.get("tasks", {})) or None
    reference = build_table([reference_dir], metric=table.attrs["metric"], tasks=tasks)
    return "\n" + render_comparison(table, reference, reference_dir)
