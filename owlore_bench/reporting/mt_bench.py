"""MT-Bench part of `owlore-bench report`: the per-category table (mt_bench.md / .csv) and the radar plot, one
per judge, from the scores files in the results store (`<unit>/mt_bench/scores-<judge>.json`).

Seeds are averaged per category like every other cell of the report (mean over the ok seeds); judges never are.
Paired differences between two rows (the delta table, the bold rule) come from the judgments themselves
(`<unit>/mt_bench/judgments/<judge>.jsonl`, one score per question and turn): a bootstrap over the questions both
rows were judged on, each question's turns kept together (score_statistics.clustered_score_difference).

Every score cell of the per-category table (each category, Turn 1, Turn 2, Overall) has its 95 % interval the
same way: a percentile bootstrap over the questions behind the cell (a category's questions; every question for
the turns and Overall), a drawn question bringing all of its valid judgments along (both turns, every ok seed),
the statistic being the mean over the drawn judgments (category_intervals; score_statistics.py). The markdown
and LaTeX cells show 'mean [low, high]' ('mean ±h' where the interval is symmetric at two decimals), mt_bench.csv
the exact bounds and the number of questions. A question's category comes from
the MT-Bench questions of the data root (the file the judging read); without them, or below 2 judged questions,
a cell has no interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from statistics import fmean
from typing import Any

import pandas as pd

from owlore_bench.errors import UserError
from owlore_bench.mtbench.judges import judge_heading
from owlore_bench.mtbench.questions import load_questions
from owlore_bench.mtbench.scores import UNPARSED, median_of_repeats
from owlore_bench.reporting import statistics
from owlore_bench.reporting.loading import Results, Run, mt_bench_judges
from owlore_bench.reporting.render import LATEX, MARKDOWN, interval_text
from owlore_bench.reporting.score_statistics import clustered_mean_interval, clustered_score_difference
from owlore_bench.results import read_jsonl, write_text_atomic

SUMMARY_COLUMNS = {"turn1": "Turn 1", "turn2": "Turn 2", "overall": "Overall"}
COUNT_COLUMNS = ("Unparsed", "Judged", "Seeds")
INTERVAL_STATS = ("ci_low", "ci_high", "questions")  # mt_bench.csv: <cell>_ci_low, <cell>_ci_high, <cell>_questions


def _mean(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return fmean(present) if present else None


def category_table(results: Results, slug: str) -> pd.DataFrame:
    """Rows = table rows (methods) scored by judge `slug`; columns = categories (1-10), Turn 1, Turn 2, Overall
    (means over seeds), Unparsed (judgments scored -1, summed over seeds), Judged (valid judgments, summed)."""
    lines = {}
    for name, runs in results.rows.items():
        scored = [run.mt_bench[slug] for run in runs if run.status == "ok" and slug in run.mt_bench]
        if not scored:
            continue
        categories = list(dict.fromkeys(category for scores in scored for category in scores["categories"]))
        line: dict[str, Any] = {category: _mean([s["categories"].get(category) for s in scored])
                                for category in categories}
        line.update({title: _mean([s[key] for s in scored]) for key, title in SUMMARY_COLUMNS.items()})
        line["Unparsed"] = sum(s["n_unparsed"] for s in scored)
        line["Judged"] = sum(s["n_valid"] for s in scored)
        spreads = [s["judge_sd"] for s in scored if s.get("judge_sd") is not None]
        if spreads:  # --judge-repeats: the judge's noise, sd over repeats of the overall score (mean over seeds)
            line["Judge sd"] = fmean(spreads)
        line["Seeds"] = len(scored)
        lines[name] = line
    table = pd.DataFrame.from_dict(lines, orient="index")
    if not table.empty:
        table[list(COUNT_COLUMNS)] = table[list(COUNT_COLUMNS)].astype(int)  # pandas made them floats beside means
    return table


def judged_rows(runs: list[Run], slug: str) -> list[dict[str, Any]] | None:
    """Every judgment of one row by judge `slug` over its ok seeds (question_id, turn, score; -1 = unparsed), from
    the judgments files with repeats folded to their median first, as the scores files do; None when an ok seed
    has no judgments file for that judge."""
    ok = [run for run in runs if run.status == "ok"]
    paths = [run.path / "mt_bench" / "judgments" / f"{slug}.jsonl" for run in ok]
    if not ok or not all(path.is_file() for path in paths):
        return None
    return [row for path in paths for row in median_of_repeats(read_jsonl(path))]


def per_question(rows: list[dict[str, Any]]) -> dict[int, tuple[float, int]]:
    """{question id: (sum of valid scores, number of valid judgments)} of judgment rows."""
    scores: dict[int, tuple[float, int]] = {}
    for row in rows:
        total, count = scores.get(int(row["question_id"]), (0.0, 0))
        valid = row["score"] != UNPARSED
        scores[int(row["question_id"])] = (total + (row["score"] if valid else 0.0), count + valid)
    return scores


def question_scores(runs: list[Run], slug: str) -> dict[int, tuple[float, int]] | None:
    """per_question of a row's judged_rows (both turns, every ok seed); None where judged_rows is None."""
    rows = judged_rows(runs, slug)
    return None if rows is None else per_question(rows)


def question_categories() -> dict[int, str] | None:
    """{question id: category} of the data root's MT-Bench questions; None when they are not there."""
    try:
        return {question["question_id"]: question["category"] for question in load_questions()}
    except UserError:
        return None


def _cell_interval(rows: list[dict[str, Any]], n_boot: int, seed: int) -> tuple[float, float, int]:
    """(low, high, questions) of the mean valid score of `rows`, bootstrapped over their judged questions;
    NaN bounds below 2 questions (one question has no spread to resample)."""
    judged = [value for value in per_question(rows).values() if value[1]]
    if len(judged) < 2:
        return math.nan, math.nan, len(judged)
    low, high = clustered_mean_interval([v[0] for v in judged], [v[1] for v in judged], n_boot, seed)
    return low, high, len(judged)


def category_intervals(results: Results, slug: str, table: pd.DataFrame, categories: dict[int, str] | None,
                       n_boot: int = statistics.N_BOOT, seed: int = 0) -> pd.DataFrame:
    """The 95 % intervals of category_table's score cells (module docstring): index = its rows, columns
    (cell, 'ci_low'|'ci_high'|'questions'), score points; NaN for a row without judgments or without
    `categories` ({question id: category}; a question missing there is 'unknown', as in the scores files)."""
    cells = [column for column in table.columns if column not in (*COUNT_COLUMNS, "Judge sd")]
    selections: dict[str, Callable[[dict[str, Any]], bool]] = {
        "Turn 1": lambda row: row["turn"] == 1, "Turn 2": lambda row: row["turn"] == 2, "Overall": lambda row: True}
    lines = {}
    for name in table.index:
        rows = judged_rows(results.rows[name], slug) if categories is not None else None
        line: dict[tuple[str, str], float] = {(cell, stat): math.nan for cell in cells for stat in INTERVAL_STATS}
        for cell in cells if rows is not None else []:
            keep = selections.get(cell, lambda row, cell=cell: categories.get(row["question_id"], "unknown") == cell)
            line.update(zip([(cell, stat) for stat in INTERVAL_STATS],
                            _cell_interval([row for row in rows if keep(row)], n_boot, seed)))
        lines[name] = line
    frame = pd.DataFrame.from_dict(lines, orient="index")
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return frame


def display_table(table: pd.DataFrame, intervals: pd.DataFrame, style=MARKDOWN) -> pd.DataFrame:
    """Strings for md/LaTeX: score cells '6.50 [6.10, 6.85]', or '6.50 ±0.42' where the interval is symmetric at
    two decimals (render.interval_text; the mean alone without one), '—' where a row has no score, counts as
    integers."""
    def cell(name: str, column: str) -> str:
        value = table.loc[name, column]
        if column in COUNT_COLUMNS:
            return str(int(value))
        if pd.isna(value):
            return "—"
        low, high = (intervals.loc[name, (column, stat)] if (column, stat) in intervals.columns else math.nan
                     for stat in ("ci_low", "ci_high"))
        return f"{value:.2f}" if math.isnan(low) else interval_text(value, low, high, digits=2)

    return pd.DataFrame([{"Row": style.escape(name), **{style.escape(column): style.escape(cell(name, column))
                                                         for column in table.columns}} for name in table.index])


def csv_table(table: pd.DataFrame, intervals: pd.DataFrame, slug: str) -> pd.DataFrame:
    """mt_bench.csv's rows of one judge: row, then each column of category_table followed by its
    <cell>_ci_low, <cell>_ci_high (score points) and <cell>_questions where it has an interval, then judge."""
    flat = pd.DataFrame({"row": table.index})
    for column in table.columns:
        flat[column] = table[column].to_numpy()
        for stat in INTERVAL_STATS if (column, "ci_low") in intervals.columns else ():
            flat[f"{column}_{stat}"] = intervals[(column, stat)].to_numpy()
    return flat.assign(judge=slug)


def _caption(title: str, has_intervals: bool) -> str:
    """What the per-category cells are; the same words for mt_bench.md and mt_bench.tex."""
    text = (f"{title}. Mean judge score (1-10) per category and turn over the seeds; Overall = mean of all valid "
            f"judgments (FastChat's show_result.py); Unparsed = judge replies without a rating (scored -1, left out "
            f"of the means).")
    if has_intervals:
        return text + (" [low, high]: the 95 % interval, a percentile bootstrap over the cell's questions, each with "
                       "both turns and every seed's judgments of it (it covers which questions were asked, not the "
                       "judge's or the training seed's noise); ± where it is symmetric; where every question scored "
                       "alike, an exact bound on the share of questions that could score otherwise; bounds in "
                       "mt_bench.csv.")
    return text + (" No intervals: the MT-Bench questions (for each question's category) or the judgments files "
                   "were not found; set OWLORE_BENCH_DATA to the data the judging read.")


def write_mtbench_files(results: Results, out_dir: str | Path, plots: bool = True,
                        n_boot: int = statistics.N_BOOT) -> list[Path]:
    """mt_bench.md, mt_bench.csv and mt_bench.tex (every judge) and mt_bench_radar_<judge>.png; [] when nothing
    was judged."""
    judges = mt_bench_judges(results)
    if not judges:
        return []
    from owlore_bench.mtbench.radar import plot_category_radar  # matplotlib: only when the files are written

    out_dir, categories = Path(out_dir), question_categories()
    sections, latex, frames, paths = [], [], [], []
    for slug, identity in judges.items():
        table = category_table(results, slug)
        intervals = category_intervals(results, slug, table, categories, n_boot)
        title = f"MT-Bench, judge {judge_heading(slug, identity)}"
        caption = _caption(title, bool(intervals.notna().any().any()))
        shown = display_table(table, intervals)
        align = ["left"] + ["right"] * len(table.columns)
        sections.append(f"## {title}\n\n{caption.removeprefix(title + '. ')}\n\n"
                        f"{shown.to_markdown(index=False, disable_numparse=True, colalign=align)}\n")
        frame = display_table(table, intervals, LATEX)
        latex.append(frame.to_latex(index=False, escape=False, caption=LATEX.escape(caption),
                                    label=f"tab:mt-bench-{slug}", column_format="l" + "r" * len(table.columns)))
        frames.append(csv_table(table, intervals, slug))
        if plots:
            scores = {name: {c: row[c] for c in table.columns if c not in (*SUMMARY_COLUMNS.values(),
                             *COUNT_COLUMNS, "Judge sd") and pd.notna(row[c])}
                      for name, row in table.iterrows()}
            paths.append(plot_category_radar(scores, out_dir / f"mt_bench_radar_{slug}.png", title))
    files = [out_dir / f"mt_bench.{suffix}" for suffix in ("md", "csv", "tex")]
    write_text_atomic(files[0], "\n".join(sections))
    write_text_atomic(files[1], pd.concat(frames).to_csv(index=False))
    write_text_atomic(files[2], "\n".join(latex))
    return [*files, *paths]


def score_difference(runs_a: list[Run], runs_b: list[Run], slug: str, n_boot: int = statistics.N_BOOT,
                     seed: int = 0) -> statistics.Difference | None:
    """Overall score of a minus b (judge `slug`, score points) on the questions both were judged on, with its
    paired bootstrap over questions and turns; None without judgments or without a common judged question."""
    a, b = question_scores(runs_a, slug), question_scores(runs_b, slug)
    if a is None or b is None:
        return None
    common = sorted(q for q in set(a) & set(b) if a[q][1] and b[q][1])
    if not common:
        return None
    columns = [[scores[q][k] for q in common] for scores in (a, b) for k in (0, 1)]
    return clustered_score_difference(*columns, n_boot=n_boot, seed=seed)
