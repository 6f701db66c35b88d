"""Paired differences between rows of the numbers table, from the per-question outcomes (and the MT-Bench
judgments): the delta table against a reference row, the bold cells, and the Pareto front of accuracy against
memory. Every test is one of statistics.py's, so a cell's interval and its p-value always agree.
"""

from __future__ import annotations

import math

import pandas as pd

from owlore_bench.errors import UserError, did_you_mean
from owlore_bench.reporting import families, statistics
from owlore_bench.reporting.loading import AVG, BASE_LABEL, FULL_FT_METHOD, MT_BENCH, Results
from owlore_bench.reporting.mt_bench import score_difference
from owlore_bench.reporting.outcomes import RowOutcomes, TaskOutcomes, same_questions, seeds_pair

ALPHA = families.ALPHA
DELTA_COLUMNS = ("row", "reference", "column", "n", "delta", "ci_low", "ci_high", "test", "p", "p_holm", "marker",
                 "holm_family")


def task_difference(a: TaskOutcomes | None, b: TaskOutcomes | None, n_boot: int = statistics.N_BOOT,
                    seed: int = 0) -> statistics.Difference | None:
    """a - b on one task, or None when either has no outcomes or the questions differ: exact McNemar and its
    interval with one seed each, else the two-level bootstrap (seeds paired when both rows ran the same ones)."""
    if not same_questions(a, b):
        return None
    if a.seeds == b.seeds == 1:
        return statistics.paired_difference(a.matrix[0], b.matrix[0])
    return statistics.seed_question_difference([a.matrix], [b.matrix], seeds_pair(a, b), n_boot, seed)


def average_difference(a: RowOutcomes, b: RowOutcomes, tasks: list[str], n_boot: int = statistics.N_BOOT,
                       seed: int = 0) -> statistics.Difference | None:
    """The Avg column's a - b: two-level bootstrap, questions resampled within each task, seeds per row (paired
    when both rows ran the same seeds); None unless every task pairs and each row has one seed count. Tasks are
    taken in name order, so `owlore-bench compare` of the same two rows draws the same resamples; the Avg of one
    task is that task's test."""
    if not tasks or not all(same_questions(a.get(task), b.get(task)) for task in tasks):
        return None
    if any(len({row[task].seeds for task in tasks}) != 1 for row in (a, b)):
        return None  # a seed lacks a task: no common seed draw across tasks
    if len(tasks) == 1:  # the Avg of one task is that task: the same test
        return task_difference(a[tasks[0]], b[tasks[0]], n_boot, seed)
    paired, tasks = all(seeds_pair(a[task], b[task]) for task in tasks), sorted(tasks)
    return statistics.seed_question_difference([a[t].matrix for t in tasks], [b[t].matrix for t in tasks], paired,
                                               n_boot, seed)


def column_difference(key: str, name_a: str, name_b: str, outcomes: dict[str, RowOutcomes], results: Results,
                      plain_tasks: list[str], n_boot: int = statistics.N_BOOT) -> statistics.Difference | None:
    """The difference of column `key` between two rows (its `test` says which), or None when no paired test is
    possible."""
    if key == AVG:
        return average_difference(outcomes.get(name_a, {}), outcomes.get(name_b, {}), plain_tasks, n_boot)
    if key.startswith(MT_BENCH):
        return score_difference(results.rows[name_a], results.rows[name_b], key[len(MT_BENCH):], n_boot)
    return task_difference(outcomes.get(name_a, {}).get(key), outcomes.get(name_b, {}).get(key), n_boot)


def distinct_best(table: pd.DataFrame, keys: list[str], outcomes: dict[str, RowOutcomes], results: Results,
                  plain_tasks: list[str], n_boot: int = statistics.N_BOOT) -> dict[str, set[str]]:
    """{column: {the best row}} for each column of `keys` where the best ok row beats the runner-up at 5 % (the
    delta table's paired test, one per column, unadjusted); a tie for best, or no paired data, makes no bold."""
    bold = {}
    ok = table[table[("status", "")] == "ok"]
    for key in keys:
        means = ok[(key, "mean")].dropna().sort_values(ascending=False, kind="stable")
        bold[key] = set()
        if len(means) < 2 or means.iloc[0] == means.iloc[1]:
            continue
        found = column_difference(key, means.index[0], means.index[1], outcomes, results, plain_tasks, n_boot)
        if found is not None and found.p_value < ALPHA:
            bold[key] = {means.index[0]}
    return bold


def separated_front(table: pd.DataFrame, outcomes: dict[str, RowOutcomes], results: Results,
                    plain_tasks: list[str], n_boot: int = statistics.N_BOOT) -> list[str] | None:
    """The Pareto front of Avg accuracy against peak memory, stepping only where a paired test separates: from
    the row with the least memory, the next front row is the next cheapest one whose Avg beats the current
    front row's at p < 0.05 (the Avg test of the delta table, unadjusted). None when no two rows pair."""
    if (AVG, "mean") not in table.columns:
        return None
    usable = table[table[(AVG, "mean")].notna() & table[("peak_mem_bytes", "mean")].notna()]
    order = sorted(usable.index, key=lambda name: (usable.loc[name, ("peak_mem_bytes", "mean")],
                                                   -usable.loc[name, (AVG, "mean")]))
    if not order:
        return None
    front, pairable = [order[0]], False
    for name in order[1:]:
        current = front[-1]
        if not all(same_questions(outcomes.get(name, {}).get(t), outcomes.get(current, {}).get(t))
                   for t in plain_tasks):
            continue
        pairable = True
        if usable.loc[name, (AVG, "mean")] > usable.loc[current, (AVG, "mean")]:
            found = column_difference(AVG, name, current, outcomes, results, plain_tasks, n_boot)
            if found is not None and found.p_value < ALPHA:
                front.append(name)
    return front if pairable else None


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
                plain_tasks: list[str], versus: str = FULL_FT_METHOD, n_boot: int = statistics.N_BOOT,
                adjust: str = "columns") -> pd.DataFrame:
    """The delta table, long: one line per (row, column) with a paired test against its experiment's reference
    row (columns DELTA_COLUMNS). Per-task p-values are Holm-adjusted within the `adjust` family (families.py;
    marker '*' when p_holm < 0.05, else 'n.s.'); Avg and MT-Bench keep their own p. Empty when nothing pairs."""
    lines = []
    for experiment, reference in reference_rows(table, versus).items():
        for name in table.index[table[("experiment", "")] == experiment]:
            if name == reference or not table.loc[name, ("ok_runs", "")]:
                continue
            for key in keys:
                found = column_difference(key, name, reference, outcomes, results, plain_tasks, n_boot)
                if found is not None:
                    lines.append((name, reference, key, found.n, found.points, found.low, found.high, found.test,
                                  found.p_value, math.nan, "", ""))
    frame = pd.DataFrame(lines, columns=list(DELTA_COLUMNS))
    return families.adjust(frame, plain_tasks, families.datasets(families.row_questions(plain_tasks, outcomes)),
                           adjust)


def p_text(value: float) -> str:
    """A p-value for display: 3 decimals, '<0.001' below."""
    return "—" if math.isnan(value) else "<0.001" if value < 0.001 else f"{value:.3f}"
