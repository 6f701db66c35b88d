"""Which per-task tests of the delta table are adjusted together (Holm), and how much each one weighs.

`--adjust` picks the family:
- columns (default): each row's task columns (one row against the reference, every dataset once);
- rows: each dataset's rows (every method against the reference on that dataset);
- all: every per-task test of the table.
Each dataset counts once in its family: the columns of one dataset in several prompt formats (boolq_labels and
boolq_choices: the same questions, scored two ways) are one member, whose p-value is the largest of its formats'
(an intersection-union test, Berger 1982: the dataset differs only where every format says so, which needs no
multiplicity penalty). Each format's cell shows its own p and the Holm-adjusted p of its dataset; as that is at
least the format's own p, a '*' never stands beside an interval that holds 0. Two columns are formats of one
dataset when their stored questions are the same (index, id and target of every question) and their names agree
up to the last '_' (boolq_labels, boolq_choices).
The Avg and MT-Bench columns are summaries, one test per row: never adjusted.
"""

from __future__ import annotations

import pandas as pd

from owlore_bench.errors import UserError
from owlore_bench.reporting import statistics
from owlore_bench.reporting.outcomes import RowOutcomes

ADJUST_MODES = ("columns", "rows", "all")
ALPHA = 0.05


def check_adjust(mode: str) -> str:
    if mode not in ADJUST_MODES:
        raise UserError(f"--adjust: unknown family '{mode}'; use one of {', '.join(ADJUST_MODES)}")
    return mode


def _stem(task: str) -> str:
    return task.rsplit("_", 1)[0] if "_" in task else task


def datasets(questions: dict[str, tuple | None]) -> dict[str, str]:
    """{task: its dataset}, from {task: its stored questions (index, id, target each), None if unknown}: the
    shared name stem for columns that are prompt formats of the same questions (see the module doc), else the
    task itself."""
    named = {}
    for task, asked in questions.items():
        twins = [other for other, theirs in questions.items() if other != task and asked is not None
                 and theirs == asked and _stem(other) == _stem(task)]
        named[task] = _stem(task) if twins else task
    return named


def row_questions(tasks: list[str], outcomes: dict[str, RowOutcomes]) -> dict[str, tuple | None]:
    """{task: the questions some row stored for it} (None where no row has outcomes)."""
    return {task: next((row[task].questions for row in outcomes.values() if task in row), None) for task in tasks}


def holm_by_dataset(pvalues: dict[str, float], dataset_of: dict[str, str]) -> dict[str, float]:
    """{task: Holm-adjusted p of its dataset} for one family of one row's tasks: a dataset's member p is the
    largest of its formats' (intersection-union), Holm over the datasets."""
    members: dict[str, float] = {}
    for task, p in pvalues.items():
        dataset = dataset_of.get(task, task)
        members[dataset] = max(members.get(dataset, 0.0), p)
    adjusted = dict(zip(members, statistics.holm(list(members.values()))))
    return {task: adjusted[dataset_of.get(task, task)] for task in pvalues}


def adjust(lines: pd.DataFrame, tasks: list[str], dataset_of: dict[str, str], mode: str) -> pd.DataFrame:
    """`lines` (deltas.DELTA_COLUMNS) with p_holm, marker and holm_family filled: per-task lines adjusted within
    their family (Holm over its (row, dataset) members, see the module doc); the other columns keep their own p
    (family 'none')."""
    lines = lines.copy()
    lines["dataset"] = lines["column"].map(lambda column: dataset_of.get(column, column))
    per_task = lines["column"].isin(tasks)
    lines["p_holm"] = lines["p"].astype(float)
    lines["holm_family"] = "none (one test per row)"
    if per_task.any():
        family = {"columns": lines["row"], "rows": lines["dataset"], "all": pd.Series("all", index=lines.index)}[mode]
        for key, index in lines[per_task].groupby(family[per_task], sort=False).groups.items():
            members = lines.loc[index]
            keys = [f"{row}\t{column}" for row, column in zip(members["row"], members["column"])]
            grouped = {k: f"{row}\t{dataset}" for k, row, dataset in zip(keys, members["row"], members["dataset"])}
            adjusted = holm_by_dataset(dict(zip(keys, members["p"])), grouped)
            count = len(set(grouped.values()))
            lines.loc[index, "p_holm"] = [adjusted[k] for k in keys]
            lines.loc[index, "holm_family"] = {"columns": f"row {key}: {count} datasets",
                                               "rows": f"dataset {key}: {count} rows",
                                               "all": f"all: {count} (row, dataset) tests"}[mode]
    lines["marker"] = ["*" if p < ALPHA else "n.s." for p in lines["p_holm"]]
    return lines.drop(columns="dataset")


def describe(mode: str, tasks: list[str], dataset_of: dict[str, str]) -> str:
    """The caption's words for the Holm family."""
    count = len(set(dataset_of.get(task, task) for task in tasks))
    formats = (f"; the {len(tasks)} task columns are {count} datasets, each counted once: a dataset's prompt "
               f"formats are one member, its p the largest of theirs (intersection-union test), shown as 'Holm' in "
               f"each format's cell" if count < len(tasks) else "")
    family = {"columns": f"each row's {count} dataset(s)", "rows": "each dataset's rows",
              "all": "every (row, dataset) test of the table"}[mode]
    return f"Holm-adjusted over {family} (--adjust {mode}){formats}"
