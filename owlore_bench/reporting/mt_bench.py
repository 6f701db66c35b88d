"""MT-Bench part of `owlore-bench report`: the per-category table (mt_bench.md / .csv) and the radar plot, one
per judge, from the scores files in the results store (`<unit>/mt_bench/scores-<judge>.json`).

Seeds are averaged per category like every other cell of the report (mean over the ok seeds); judges never are.
Paired differences between two rows (the delta table, the bold rule) come from the judgments themselves
(`<unit>/mt_bench/judgments/<judge>.jsonl`, one score per question and turn): a bootstrap over the questions both
rows were judged on, each question's turns kept together (statistics.clustered_score_difference).
"""

from __future__ import annotations

from pathlib import Path
from statistics import fmean
from typing import Any

import pandas as pd

from owlore_bench.mtbench.judges import describe
from owlore_bench.mtbench.scores import UNPARSED, median_of_repeats
from owlore_bench.reporting import statistics
from owlore_bench.reporting.loading import Results, Run, mt_bench_judges
from owlore_bench.results import read_jsonl, write_text_atomic

SUMMARY_COLUMNS = {"turn1": "Turn 1", "turn2": "Turn 2", "overall": "Overall"}


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
    counts = ["Unparsed", "Judged", "Seeds"]
    if not table.empty:
        table[counts] = table[counts].astype(int)  # pandas made them floats beside the means
    return table


def write_mtbench_files(results: Results, out_dir: str | Path, plots: bool = True) -> list[Path]:
    """mt_bench.md and mt_bench.csv (every judge) and mt_bench_radar_<judge>.png; [] when nothing was judged."""
    judges = mt_bench_judges(results)
    if not judges:
        return []
    from owlore_bench.mtbench.radar import plot_category_radar  # matplotlib: only when the files are written

    out_dir = Path(out_dir)
    sections, frames, paths = [], [], []
    for slug, identity in judges.items():
        table = category_table(results, slug)
        title = f"MT-Bench, judge {describe(identity) if identity else slug}"
        sections.append(f"## {title}\n\nMean judge score (1-10) per category and turn over the seeds; Overall = "
                        f"mean of all valid judgments (FastChat's show_result.py); Unparsed = judge replies "
                        f"without a rating (scored -1, left out of the means).\n\n"
                        f"{table.to_markdown(floatfmt='.2f')}\n")
        frames.append(table.rename_axis("row").reset_index().assign(judge=slug))
        if plots:
            scores = {name: {c: row[c] for c in table.columns if c not in (*SUMMARY_COLUMNS.values(),
                             "Unparsed", "Judged", "Seeds", "Judge sd") and pd.notna(row[c])}
                      for name, row in table.iterrows()}
            paths.append(plot_category_radar(scores, out_dir / f"mt_bench_radar_{slug}.png", title))
    write_text_atomic(out_dir / "mt_bench.md", "\n".join(sections))
    write_text_atomic(out_dir / "mt_bench.csv", pd.concat(frames).to_csv(index=False))
    return [out_dir / "mt_bench.md", out_dir / "mt_bench.csv", *paths]


def question_scores(runs: list[Run], slug: str) -> dict[int, tuple[float, int]] | None:
    """{question id: (sum of valid scores, number of valid judgments)} over both turns and the ok seeds of one
    row, from its judgments files (repeats folded to their median first, as the scores files do); None when an
    ok seed has no judgments file for judge `slug`."""
    ok = [run for run in runs if run.status == "ok"]
    paths = [run.path / "mt_bench" / "judgments" / f"{slug}.jsonl" for run in ok]
    if not ok or not all(path.is_file() for path in paths):
        return None
    scores: dict[int, tuple[float, int]] = {}
    for path in paths:
        for row in median_of_repeats(read_jsonl(path)):  # repeated judging: each turn once, its median
            total, count = scores.get(int(row["question_id"]), (0.0, 0))
            valid = row["score"] != UNPARSED
            scores[int(row["question_id"])] = (total + (row["score"] if valid else 0.0), count + valid)
    return scores


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
    return statistics.clustered_score_difference(*columns, n_boot=n_boot, seed=seed)
