"""The delta table, displayed (deltas.delta_frame computes it): one line per row, one column per task, Avg and
MT-Bench judge; a cell is 'Δ [95 % CI] p=… marker' against the reference row. Files delta.md, delta.csv (long:
one line per row and column, every figure in its own column) and delta.tex.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from owlore_bench.reporting.deltas import ALPHA, p_text
from owlore_bench.reporting.loading import AVG, MT_BENCH, mt_bench_title
from owlore_bench.reporting.render import LATEX, MARKDOWN, _Style
from owlore_bench.results import write_text_atomic


def delta_cell(line: pd.Series) -> str:
    """'+3.0 [-3.0, +9.0] p=0.508 n.s.' (points; MT-Bench: score points with 2 decimals)."""
    digits = 2 if line["column"].startswith(MT_BENCH) else 1
    return (f"{line['delta']:+.{digits}f} [{line['ci_low']:+.{digits}f}, {line['ci_high']:+.{digits}f}] "
            f"p{'' if p_text(line['p_holm']).startswith('<') else '='}{p_text(line['p_holm'])} {line['marker']}")


def delta_display(deltas: pd.DataFrame, style: _Style = MARKDOWN) -> pd.DataFrame:
    """Strings: 'Method' then one column per compared column, in the numbers table's order."""
    titles = {key: mt_bench_title(key) if key.startswith(MT_BENCH) else key for key in dict.fromkeys(deltas["column"])}
    lines = []
    for name, group in deltas.groupby("row", sort=False):
        line = {"Method": style.escape(name)}
        cells = {row["column"]: delta_cell(row) for _, row in group.iterrows()}
        line.update({style.escape(title): style.escape(cells.get(key, "—")) for key, title in titles.items()})
        lines.append(line)
    return pd.DataFrame(lines)


def delta_caption(table: pd.DataFrame) -> str:
    deltas = table.attrs["deltas"]
    references = ", ".join(sorted(set(deltas["reference"])))
    return (f"Δ against {references} (--versus {table.attrs.get('versus')}), same questions: accuracy in points, "
            f"95 % paired bootstrap interval over questions (seeds resampled too when a row has several). p: exact "
            f"McNemar (one seed each) or bootstrap p (several seeds), Holm-adjusted over each row's task columns; "
            f"{AVG}: stratified by task, MT-Bench: over questions with their turns (score points 1-10), both "
            f"unadjusted. * = p < {ALPHA}, n.s. = not distinguishable.")


def render_delta_markdown(table: pd.DataFrame) -> str:
    """The delta table's caption and markdown table; '' when no row pairs with the reference."""
    deltas = table.attrs.get("deltas")
    if deltas is None or deltas.empty:
        return ""
    frame = delta_display(deltas, MARKDOWN)
    align = ["left"] + ["right"] * (len(frame.columns) - 1)
    return f"{delta_caption(table)}\n\n{frame.to_markdown(index=False, disable_numparse=True, colalign=align)}\n"


def render_delta_latex(table: pd.DataFrame) -> str:
    frame = delta_display(table.attrs["deltas"], LATEX)
    return frame.to_latex(index=False, escape=False, caption=LATEX.escape(delta_caption(table)),
                          label="tab:owlore-bench-delta", column_format="l" + "r" * (len(frame.columns) - 1))


def write_delta_tables(table: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """delta.md, delta.csv and delta.tex in out_dir when there is a delta table; returns their paths."""
    deltas = table.attrs.get("deltas")
    if deltas is None or deltas.empty:
        return []
    out_dir = Path(out_dir)
    paths = [out_dir / "delta.md", out_dir / "delta.csv", out_dir / "delta.tex"]
    write_text_atomic(paths[0], render_delta_markdown(table))
    write_text_atomic(paths[1], deltas.to_csv(index=False))
    write_text_atomic(paths[2], render_delta_latex(table))
    return paths
