"""95 % intervals of the numbers table's accuracy cells, from the per-question outcomes (reporting/outcomes.py).

- one seed, one task: the Wilson interval over its questions (it covers question sampling of that one trained
  model, not the training seed's variance); the cell shows '[low, high]' (render.interval_text);
- several seeds, or the Avg column: a two-level bootstrap, seeds resampled, then questions within each task
  (statistics.seed_question_interval: it covers both); with several seeds the cell shows mean ± sample std over
  seeds (the between-seed spread) and the interval is in the CSV. An Avg of one task is that task's interval.
Columns added per task and Avg: (key, 'ci_low'), (key, 'ci_high') in percent and (key, 'questions') (per seed,
summed over tasks for Avg); NaN where a row has no outcomes.
"""

from __future__ import annotations

import math

import pandas as pd

from owlore_bench.reporting import statistics
from owlore_bench.reporting.loading import AVG
from owlore_bench.reporting.outcomes import RowOutcomes, TaskOutcomes

INTERVAL_STATS = ("ci_low", "ci_high", "questions")


def cell_interval(task_outcomes: TaskOutcomes, n_boot: int = statistics.N_BOOT,
                  seed: int = 0) -> tuple[float, float, str]:
    """(low, high, how) in percent of one task cell: Wilson for one seed, else the two-level bootstrap."""
    if task_outcomes.seeds == 1:
        low, high = statistics.wilson_interval(int(task_outcomes.matrix.sum()), task_outcomes.n)
        return 100 * low, 100 * high, "wilson"
    _, low, high = statistics.seed_question_interval([task_outcomes.matrix], n_boot, seed)
    return low, high, "bootstrap"


def average_interval(row: RowOutcomes, tasks: list[str], n_boot: int = statistics.N_BOOT,
                     seed: int = 0) -> tuple[float, float] | None:
    """The Avg cell's interval (percent): two-level bootstrap over the row's seeds and each task's questions;
    None unless every Avg task has outcomes from the same seeds."""
    matrices = [row[task].matrix for task in tasks if task in row]
    if not tasks or len(matrices) != len(tasks) or len({m.shape[0] for m in matrices}) != 1:
        return None
    if len(tasks) == 1:  # the Avg of one task is that task: the same interval (Wilson for one seed)
        return cell_interval(row[tasks[0]], n_boot, seed)[:2]
    _, low, high = statistics.seed_question_interval(matrices, n_boot, seed)
    return low, high


def add_intervals(table: pd.DataFrame, outcomes: dict[str, RowOutcomes], plain_tasks: list[str],
                  n_boot: int = statistics.N_BOOT) -> None:
    """Add the interval columns (see the module doc) to `table` in place; attrs['interval_kinds'] records which
    interval each task cell used ({'wilson', 'bootstrap'})."""
    kinds: set[str] = set()
    cells: dict[tuple[str, str], list[float]] = {}
    for name in table.index:
        row = outcomes.get(name, {}) if table.loc[name, ("ok_runs", "")] else {}
        for task in plain_tasks:
            low = high = questions = math.nan
            if task in row:
                low, high, how = cell_interval(row[task], n_boot)
                questions, kinds = row[task].n, kinds | {how}
            for stat, value in zip(INTERVAL_STATS, (low, high, questions)):
                cells.setdefault((task, stat), []).append(value)
        average = average_interval(row, plain_tasks, n_boot)
        for stat, value in zip(INTERVAL_STATS, (*(average or (math.nan, math.nan)),
                                                sum(row[t].n for t in plain_tasks) if average else math.nan)):
            cells.setdefault((AVG, stat), []).append(value)
    for key, values in cells.items():
        table[key] = values
    table.attrs["interval_kinds"] = sorted(kinds)
