"""Paired comparisons between rows of the numbers table, on the questions both answered:

- the delta table: every row against a reference row (`--versus`, default full_ft) per task, for Avg and per
  MT-Bench judge: the difference, its 95 % paired bootstrap interval, the p-value and the Holm-adjusted one;
- the bold rule: a cell is bold only when it is the best of its column and distinguishable from the runner-up
  at 5 % by the same paired test.
Tests: one seed per row → the exact McNemar test (scipy binomtest on the discordant questions); several seeds,
the Avg column (stratified by task) and MT-Bench → the bootstrap p-value (statistics.py). Holm adjusts a row's
p-values over its task columns (the family of one row's comparison); Avg and MT-Bench are reported unadjusted.
Differences in points (accuracy) or score points (MT-Bench, 1-10).
"""

from __future__ import annotations

import math

import pandas as pd

from owlore_bench.errors import UserError, did_you_mean
from owlore_bench.reporting import statistics
from owlore_bench.reporting.loading import AVG, BASE_LABEL, FULL_FT_METHOD, MT_BENCH, Results
from owlore_bench.reporting.mt_bench import score_difference
from owlore_bench.reporting.outcomes import RowOutcomes, TaskOutcomes, same_questions

ALPHA = 0.05
DELTA_COLUMNS = ("row", "reference", "column", "n", "delta", "ci_low", "ci_high", "test", "p", "p_holm", "marker")


def task_difference(a: TaskOutcomes | None, b: TaskOutcomes | None, n_boot: int = statistics.N_BOOT,
                    seed: int = 0) -> tuple[statistics.Difference, str] | None:
    """(a - b, the test's name) on one task, or None when either has no outcomes or the questions differ."""
    if not same_questions(a, b):
        return None
    if a.seeds == b.seeds == 1:
        return statistics.paired_difference(a.matrix[0], b.matrix[0], n_boot, seed), "exact McNemar"
    return statistics.seed_question_difference([a.matrix], [b.matrix], n_boot, seed), "bootstrap"


def average_difference(a: RowOutcomes, b: RowOutcomes, tasks: list[str], n_boot: int = statistics.N_BOOT,
                       seed: int = 0) -> statistics.Difference | None:
    """The Avg column's a - b: stratified by task (questions resampled within each task, seeds per row)."""
    if not tasks or not all(same_questions(a.get(task), b.get(task)) for task in tasks):
        return None
    if any(len({row[task].seeds for task in tasks}) != 1 for row in (a, b)):
        return None  # a seed lacks a task: no common seed draw across tasks
    return statistics.seed_question_difference([a[t].matrix for t in tasks], [b[t].matrix for t in tasks], n_boot,
                                               seed)


def column_difference(key: str, name_a: str, name_b: str, outcomes: dict[str, RowOutcomes], results: Results,
                      plain_tasks: list[str], n_boot: int = statistics.N_BOOT):
    """(difference, test) of column `key` between two rows, or None when no paired test is possible."""
    if key == AVG:
        found = average_difference(outcomes.get(name_a, {}), outcomes.get(name_b, {}), plain_tasks, n_boot)
        return None if found is None else (found, "bootstrap, stratified by task")
    if key.startswith(MT_BENCH):
        found = score_difference(results.rows[name_a], results.rows[name_b], key[len(MT_BENCH):], n_boot)
        return None if found is None else (found, "bootstrap over questions")
    return task_difference(outcomes.get(name_a, {}).get(key), outcomes.get(name_b, {}).get(key), n_boot)


def distinct_best(table: pd.DataFrame, keys: list[str], outcomes: dict[str, RowOutcomes], results: Results,
                  plain_tasks: list[str], n_boot: int = statistics.N_BOOT) -> dict[str, set[str]]:
    """{column: {the best row}} for each column of `keys` where the best ok row beats the runner-up at 5 % (an
    unadjusted paired test, one per column); a tie for best, or no paired data, makes no bold cell."""
    bold = {}
    ok = table[table[("status", "")] == "ok"]
    for key in keys:
        means = ok[(key, "mean")].dropna().sort_values(ascending=False, kind="stable")
        bold[key] = set()
        if len(means) < 2 or means.iloc[0] == means.iloc[1]:
            continue
        found = column_difference(key, means.index[0], means.index[1], outcomes, results, plain_tasks, n_boot)
        if found is not None and found[0].p_value < ALPHA:
            bold[key] = {means.index[0]}
    return bold


def reference_rows(table: pd.DataFrame, versus: str) -> dict[str, str]:
    """{experiment: its reference row}: the row named `versus` (base | full_ft | a label), else for base and
    full_ft the experiment's first row of that method. A name no row has is one UserError line."""
    references = {}
    for experiment, rows in table.groupby(("experiment", ""), sort=False):
        named = [name for name in rows.index if name == versus or rows.loc[name, ("label", "")] == versus]
        if not named and versus in (BASE_LABEL, FULL_FT_METHOD):
            named = [name for name in rows.index if rows.loc[name, ("method", "")] == versus]
        if named:
            references[experiment] = named[0]
    if not references and versus not in (BASE_LABEL, FULL_FT_METHOD):
        raise UserError(f"--versus: no row '{versus}'; rows: {', '.join(table.index)}."
                        f"{did_you_mean(versus, list(table.index))}")
    return references


def delta_frame(table: pd.DataFrame, keys: list[str], outcomes: dict[str, RowOutcomes], results: Results,
                plain_tasks: list[str], versus: str = FULL_FT_METHOD,
                n_boot: int = statistics.N_BOOT) -> pd.DataFrame:
    """The delta table, long: one line per (row, column) with a paired test against its experiment's reference
    row (columns DELTA_COLUMNS; marker '*' when p_holm < 0.05, else 'n.s.'). Empty when nothing pairs."""
    lines = []
    for experiment, reference in reference_rows(table, versus).items():
        for name in table.index[table[("experiment", "")] == experiment]:
            if name == reference or not table.loc[name, ("ok_runs", "")]:
                continue
            found = {key: column_difference(key, name, reference, outcomes, results, plain_tasks, n_boot)
                     for key in keys}
            found = {key: value for key, value in found.items() if value is not None}
            tasks = [key for key in found if key in plain_tasks]
            holm = dict(zip(tasks, statistics.holm([found[key][0].p_value for key in tasks]))) if tasks else {}
            for key, (difference, test) in found.items():
                adjusted = holm.get(key, difference.p_value)
                lines.append((name, reference, key, difference.n, difference.points, difference.low,
                              difference.high, test, difference.p_value, adjusted,
                              "*" if adjusted < ALPHA else "n.s."))
    return pd.DataFrame(lines, columns=list(DELTA_COLUMNS))


def p_text(value: float) -> str:
    """A p-value for display: 3 decimals, '<0.001' below."""
    return "—" if math.isnan(value) else "<0.001" if value < 0.001 else f"{value:.3f}"
