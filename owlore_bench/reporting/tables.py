"""The numbers table: one row per label, one column per task, their Avg, peak memory, trainable parameters and
tokens/s; each cell is the mean, std and n over seeds (a pandas frame with (column, stat) keys).
Units: accuracy in percent, memory in bytes, throughput in tokens per second.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from owlore_bench.errors import UserError, did_you_mean
from owlore_bench.reporting import statistics
from owlore_bench.reporting.deltas import delta_frame, distinct_best, separated_front
from owlore_bench.reporting.families import check_adjust, datasets, row_questions
from owlore_bench.reporting.forgetting import add_forgetting
from owlore_bench.reporting.intervals import add_intervals
from owlore_bench.reporting.loading import (
    AVG,
    DELTA,
    EXTRA_COLUMNS,
    FULL_FT_METHOD,
    MAX_TASK_COLUMNS,
    METRICS,
    MT_BENCH,
    Results,
    Run,
    load_results,
    mt_bench_judges,
)
from owlore_bench.reporting.outcomes import missing_hint, table_outcomes
from owlore_bench.reporting.throughput import row_contention, unit_tokens_per_s


def is_group_row(row: dict[str, Any]) -> bool:
    """Group averages (e.g. 'commonsense_choices_avg', an lm-eval group) are stored as rows too; they are not
    part of Avg. Recognised by a 'members' list, 'is_group'/'group' true, or a name ending in '_avg'."""
    return bool(row.get("members") or row.get("is_group") or row.get("group") is True
                or str(row.get("task", "")).endswith("_avg"))


def requested_tasks(results: Results) -> list[str]:
    """The task names the experiments asked for (experiment.json 'eval.tasks' or 'tasks')."""
    names: list[str] = []
    for experiment in results.experiments.values():
        evaluation = experiment.get("eval") if isinstance(experiment.get("eval"), dict) else {}
        for entry in evaluation.get("tasks") or experiment.get("tasks") or []:
            name = entry.get("name") or entry.get("task") if isinstance(entry, dict) else entry
            if name and str(name) not in names:
                names.append(str(name))
    return names


def _shown_tasks(first_row: dict[str, dict[str, Any]], results: Results, tasks: list[str] | None
                 ) -> tuple[list[str], list[str]]:
    """(task columns that make up Avg, group columns shown after them). Chosen by, in turn: `tasks` (the
    --tasks flag); the experiments' own task list (their subtasks are then left out: MMLU is one column);
    else every stored task, folding to the group columns alone when there are more than MAX_TASK_COLUMNS."""
    groups = [task for task, row in first_row.items() if is_group_row(row)]
    if tasks:
        unknown = [task for task in tasks if task not in first_row]
        if unknown:
            raise UserError(f"--tasks: no stored results for {', '.join(unknown)}; stored tasks: "
                            f"{', '.join(first_row)}.{did_you_mean(unknown[0], list(first_row))}")
        return [task for task in tasks if task not in groups], [task for task in tasks if task in groups]
    listed = [task for task in requested_tasks(results) if task in first_row and task not in groups]
    if listed:
        return listed, groups
    plain = [task for task in first_row if task not in groups]
    return ([], groups) if len(plain) > MAX_TASK_COLUMNS and groups else (plain, groups)


def task_columns(results: Results, metric: str, tasks: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """task → {metric, num_fewshot, group} for the shown task columns (see _shown_tasks), plain tasks first.
    A task uses `metric` when every run that scored it reports that metric, else 'acc' (else the first metric
    stored), so one column never mixes metrics."""
    metrics_seen: dict[str, list[set[str]]] = defaultdict(list)
    first_row: dict[str, dict[str, Any]] = {}
    for run in (run for runs in results.rows.values() for run in runs):
        per_task = defaultdict(set)
        for row in run.eval_rows:
            per_task[row["task"]].add(row["metric"])
            first_row.setdefault(row["task"], row)
        for task, names in per_task.items():
            metrics_seen[task].append(names)
    plain, groups = _shown_tasks(first_row, results, tasks)
    if not plain:  # only group columns shown (MMLU): they are the tasks that Avg averages
        plain, groups = groups, []
    columns = {}
    for task in plain + groups:
        common = set.intersection(*metrics_seen[task])
        chosen = metric if metric in common else "acc" if "acc" in common else first_row[task]["metric"]
        shots = {row.get("num_fewshot") for runs in results.rows.values() for run in runs
                 for row in run.eval_rows if row["task"] == task and row["metric"] == chosen}
        columns[task] = {"metric": chosen, "num_fewshot": shots.pop() if len(shots) == 1 else None,
                         "group": task in groups}
    return columns


def run_values(run: Run, tasks: dict[str, dict[str, Any]]) -> dict[str, float]:
    """One run's numbers: accuracy per task and Avg (percent), peak memory (bytes), params, tokens/s (median of
    the steady-state steps, throughput.py)."""
    scores = {(row["task"], row["metric"]): row["value"] for row in run.eval_rows}
    values = {}
    for task, info in tasks.items():
        value = scores.get((task, info["metric"]))
        values[task] = math.nan if value is None else 100.0 * float(value)
    plain = [values[task] for task, info in tasks.items() if not info["group"]]
    values[AVG] = sum(plain) / len(plain) if plain and not any(math.isnan(v) for v in plain) else math.nan
    for slug, scores in run.mt_bench.items():
        values[MT_BENCH + slug] = scores.get("overall")
    values["peak_mem_bytes"] = run.summary.get("peak_mem_total_bytes")
    values["trainable_params"] = run.summary.get("trainable_params")
    values["tokens_per_s"] = unit_tokens_per_s(run)
    return {key: math.nan if value is None else float(value) for key, value in values.items()}


def status_text(runs: list[Run]) -> str:
    """'ok' when every seed finished ok; the status itself when none did ('diverged', 'diverged/oom');
    `'k/n <status>'` when some did not."""
    bad = [run.status for run in runs if run.status != "ok"]
    if not bad:
        return "ok"
    statuses = "/".join(sorted(set(bad)))
    return statuses if len(bad) == len(runs) else f"{len(bad)}/{len(runs)} {statuses}"


def _row_stats(runs: list[Run], keys: list[str], tasks: dict[str, dict[str, Any]]) -> dict[tuple[str, str], Any]:
    """mean, sample std (ddof 1) and n over the ok seeds of one row, per column."""
    ok = pd.DataFrame([run_values(run, tasks) for run in runs if run.status == "ok"], columns=keys, dtype=float)
    cells: dict[tuple[str, str], Any] = {}
    for key in keys:
        values = ok[key].dropna()
        cells[(key, "mean")] = values.mean() if len(values) else math.nan
        cells[(key, "std")] = values.std(ddof=1) if len(values) > 1 else math.nan
        cells[(key, "n")] = len(values)
    return cells


def _add_delta(table: pd.DataFrame) -> None:
    """Avg minus the Avg of the experiment's full FT row (label 'full_ft', else the first full_ft method row),
    in percentage points; NaN where the experiment has no full FT row."""
    deltas, references = [], []
    for name in table.index:
        experiment = table.loc[name, ("experiment", "")]
        same = table[table[("experiment", "")] == experiment]
        reference = same[same[("label", "")] == FULL_FT_METHOD]
        if reference.empty:
            reference = same[same[("method", "")] == FULL_FT_METHOD]
        avg = table.loc[name, (AVG, "mean")]
        references += list(reference.index[:1])
        deltas.append(avg - reference.iloc[0][(AVG, "mean")] if not reference.empty else math.nan)
    table[(DELTA, "mean")] = deltas
    table[(DELTA, "std")] = math.nan
    table[(DELTA, "n")] = table[(AVG, "n")]
    table.attrs["delta_references"] = sorted(set(references))


def table_from_results(results: Results, metric: str = "acc", delta: bool = False, tasks: list[str] | None = None,
                       versus: str = FULL_FT_METHOD, n_boot: int = statistics.N_BOOT,
                       adjust: str = "columns") -> pd.DataFrame:
    """The numbers table: index = row names in display order; columns are (key, 'mean'|'std'|'n') for each task,
    Avg, peak_mem_bytes, trainable_params, tokens_per_s (and delta_avg_vs_full_ft), plus (experiment|label|
    method|status|runs|ok_runs|contention, ''). Accuracy in percent, memory in bytes. `tasks` picks the task
    columns (default: see _shown_tasks). attrs: tasks (metric, shots, group per shown task), hidden_tasks (stored
    but not shown), skipped (incomplete run folders), metric (asked for), and what _add_decisions adds
    (intervals, the bold cells, the delta table against `versus` with Holm families `adjust`, the Pareto front,
    forgetting)."""
    if metric not in METRICS:
        raise UserError(f"--metric: unknown metric '{metric}'; use one of {', '.join(METRICS)}")
    check_adjust(adjust)
    columns = task_columns(results, metric, tasks)
    judges = mt_bench_judges(results)
    keys = [*columns, AVG] if columns else []
    keys += [MT_BENCH + slug for slug in judges] + list(EXTRA_COLUMNS)
    records = {}
    for name, runs in results.rows.items():
        records[name] = {("experiment", ""): runs[0].experiment, ("label", ""): runs[0].label,
                         ("method", ""): runs[0].method, ("status", ""): status_text(runs),
                         ("runs", ""): len(runs), ("ok_runs", ""): sum(run.status == "ok" for run in runs),
                         ("contention", ""): row_contention(runs), **_row_stats(runs, keys, columns)}
    table = pd.DataFrame.from_dict(records, orient="index")
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    stored = {row["task"] for runs in results.rows.values() for run in runs for row in run.eval_rows}
    table.attrs.update(tasks=columns, mt_bench_judges=judges, hidden_tasks=sorted(stored - set(columns)), metric=metric,
                       skipped=[str(path) for path in results.skipped],
                       protocols=[run.eval_protocol for runs in results.rows.values() for run in runs])
    if delta and columns:
        _add_delta(table)
    _add_decisions(table, results, versus, n_boot, adjust)
    return table


def _add_decisions(table: pd.DataFrame, results: Results, versus: str, n_boot: int, adjust: str) -> None:
    """From the per-question outcomes: interval columns (intervals.py); attrs bold ({column: rows}, deltas.py),
    deltas (the long delta table), versus, adjust, datasets ({task: dataset}), pareto_front (rows, or None when
    no two rows pair), missing_samples (the re-evaluate line or None); and the forgetting column (forgetting.py;
    attrs forgetting: whether there is one)."""
    columns = table.attrs["tasks"]
    plain = [task for task, info in columns.items() if not info["group"]]
    outcomes = table_outcomes(results, columns)
    if plain:
        add_intervals(table, outcomes, plain, n_boot)
    keys = ([*plain, AVG] if plain else []) + [MT_BENCH + slug for slug in table.attrs["mt_bench_judges"]]
    table.attrs.update(bold=distinct_best(table, keys, outcomes, results, plain, n_boot), versus=versus,
                       deltas=delta_frame(table, keys, outcomes, results, plain, versus, n_boot, adjust),
                       adjust=adjust, datasets=datasets(row_questions(plain, outcomes)),
                       pareto_front=separated_front(table, outcomes, results, plain, n_boot),
                       missing_samples=missing_hint(results, plain),
                       forgetting=add_forgetting(table, results))


def build_table(dirs: Iterable[str | Path], metric: str | None = None, delta: bool = False,
                tasks: list[str] | None = None, versus: str = FULL_FT_METHOD, adjust: str = "columns") -> pd.DataFrame:
    """The numbers table of one or more experiment folders (see table_from_results). `metric` None: the
    experiments' own choice (experiment.json 'metric' or 'eval.metric'), else 'acc'."""
    results = load_results(dirs)
    return table_from_results(results, metric or default_metric(results), delta, tasks, versus, adjust=adjust)


def default_metric(results: Results) -> str:
    """acc_norm when an experiment.json asks for it (key 'metric' or 'eval.metric'), else acc."""
    for experiment in results.experiments.values():
        evaluation = experiment.get("eval") if isinstance(experiment.get("eval"), dict) else {}
        if (experiment.get("metric") or evaluation.get("metric")) == "acc_norm":
            return "acc_norm"
    return "acc"
