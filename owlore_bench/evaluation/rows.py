"""lm-eval's results dict as tidy rows {task, metric, value, stderr, n, num_fewshot}: one per task and metric, one
per lm-eval group (size-weighted, as lm-eval's mmlu), plus the paper's averages (e.g. commonsense_choices_avg)."""

from __future__ import annotations

import math
from typing import Any

COMMONSENSE = ("boolq", "piqa", "social_iqa", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "openbookqa")
# Extra rows: the paper's commonsense average (plain mean over whichever of the 8 tasks were scored).
AVERAGES = {f"commonsense_{scoring}_avg": [f"{task}_{scoring}" for task in COMMONSENSE]
            for scoring in ("choices", "labels")}
ROW_FIELDS = ("task", "metric", "value", "stderr", "n", "num_fewshot")


def rows_from_results(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Tidy rows of an lm-eval results dict (tasks first, then groups, then AVERAGES)."""
    group_names = set(results.get("groups", {}))
    n_samples = results.get("n-samples", {})
    shots = results.get("n-shot", {})
    rows = []
    for name, metrics in results["results"].items():
        if name in group_names:
            continue
        count = n_samples.get(name, {}).get("effective")
        rows += _metric_rows(name, metrics, count, shots.get(name))
    for name, metrics in results.get("groups", {}).items():
        children = _leaf_tasks(name, results.get("group_subtasks", {}))
        count = sum(n_samples.get(child, {}).get("effective", 0) for child in children)
        child_shots = {shots.get(child) for child in children}
        rows += _metric_rows(name, metrics, count, child_shots.pop() if len(child_shots) == 1 else None)
    return rows + average_rows(rows)


def _leaf_tasks(group: str, group_subtasks: dict[str, list[str]]) -> list[str]:
    leaves = []
    for child in group_subtasks.get(group, []):
        leaves += _leaf_tasks(child, group_subtasks) if child in group_subtasks else [child]
    return leaves


def _metric_rows(task: str, metrics: dict[str, Any], count: int | None, shots: Any) -> list[dict[str, Any]]:
    rows = []
    for key, value in metrics.items():
        if "," not in key or "_stderr" in key or not isinstance(value, (int, float)):
            continue
        metric, filter_name = key.split(",", 1)
        stderr = metrics.get(f"{metric}_stderr,{filter_name}")
        rows.append({"task": task, "metric": metric if filter_name == "none" else f"{metric}/{filter_name}",
                     "value": float(value), "stderr": float(stderr) if isinstance(stderr, (int, float)) else None,
                     "n": count, "num_fewshot": shots})
    return rows


def average_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each AVERAGES entry with 2+ member tasks scored: the plain mean per metric all of them report."""
    extra = []
    for average, members in AVERAGES.items():
        present = [row for row in rows if row["task"] in members]
        tasks = {row["task"] for row in present}
        if len(tasks) < 2:
            continue
        for metric in dict.fromkeys(row["metric"] for row in present):
            chosen = [row for row in present if row["metric"] == metric]
            if len(chosen) != len(tasks):
                continue
            errors = [row["stderr"] for row in chosen]
            stderr = math.sqrt(sum(e * e for e in errors)) / len(chosen) if None not in errors else None
            shots = {row["num_fewshot"] for row in chosen}
            extra.append({"task": average, "metric": metric, "value": sum(r["value"] for r in chosen) / len(chosen),
                          "stderr": stderr, "n": sum(r["n"] or 0 for r in chosen),
                          "num_fewshot": shots.pop() if len(shots) == 1 else None})
    return extra
