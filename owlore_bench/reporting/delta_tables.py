"""The delta table, displayed (deltas.delta_frame computes it): one line per row, one column per task, Avg and
MT-Bench judge; a cell is 'Δ [95 % CI] p=… (Holm …) marker' against the reference row: the interval and p come
from one method (they agree), the marker from the Holm-adjusted p. Files delta.md, delta.csv (long: one line per
row and column, every figure in its own column) and delta.tex.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from owlore_bench.reporting import families, statistics
from owlore_bench.reporting.deltas import ALPHA, p_text
from owlore_bench.reporting.loading import AVG, MT_BENCH, mt_bench_title
from owlore_bench.reporting.render import LATEX, MARKDOWN, _Style
from owlore_bench.results import write_text_atomic


def delta_cell(line: pd.Series) -> str:
    """'+3.0 [-3.0, +9.0] p=0.508 (Holm 1.000) n.s.' (points; MT-Bench: score points with 2 decimals); a column
    outside every Holm family shows its p alone."""
    digits = 2 if line["column"].startswith(MT_BENCH) else 1
    text = f"{line['delta']:+.{digits}f} [{line['ci_low']:+.{digits}f}, {line['ci_high']:+.{digits}f}] "
    text += f"p{'' if p_text(line['p']).startswith('<') else '='}{p_text(line['p'])} "
    adjusted = str(line.get("holm_family", "")) not in ("", "nan") and not str(line["holm_family"]).startswith("none")
    if adjusted:
        text += f"(Holm {p_text(line['p_holm'])}) "
    return text + str(line["marker"])


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
    """What a delta cell is: the difference, which variance its interval covers, the test, the Holm family."""
    deltas = table.attrs["deltas"]
    references = ", ".join(sorted(set(deltas["reference"])))
    tests = set(deltas["test"])
    plain = [task for task, info in table.attrs.get("tasks", {}).items() if not info["group"]]
    units = "accuracy in points, " if plain else ""
    text = (f"Δ against {references} (--versus {table.attrs.get('versus')}), same questions: {units}95 % interval "
            f"and two-sided p from one method, so the interval excludes 0 exactly when p < {ALPHA}. ")
    if statistics.EXACT in tests or statistics.POOLED in tests:
        text += ("Per task, one seed each: exact McNemar p and its matching exact interval (Clopper-Pearson over "
                 "the discordant questions); it covers which questions were asked, for these two trained models, "
                 "not the training seed's variance. ")
    if statistics.BOOTSTRAP in tests or statistics.POOLED in tests:
        text += ("Several seeds: two-level bootstrap, seeds then questions (seed s paired with seed s where both "
                 "rows ran the same seeds), interval and p from the same draws: it covers both; where it "
                 "degenerates (no answer differs), the exact McNemar test of the pooled (seed, question) pairs. ")
    text += (f"{AVG}: two-level bootstrap over every task, questions resampled within each (one task: that "
             f"task's test). " if AVG in set(deltas["column"]) else "")
    if any(str(column).startswith(MT_BENCH) for column in deltas["column"]):
        text += "MT-Bench: bootstrap over questions with their turns (score points 1-10). "
    if plain:
        text += (f"{families.describe(table.attrs.get('adjust', 'columns'), plain, table.attrs.get('datasets', {}))}; "
                 f"{AVG} and MT-Bench: one test per row, not adjusted. * = adjusted p < {ALPHA} ({AVG}, MT-Bench: "
                 f"p < {ALPHA}), n.s. = not distinguishable.")
    else:
        text += f"One test per row, not adjusted. * = p < {ALPHA}, n.s. = not distinguishable."
    return text


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
