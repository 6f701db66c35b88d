"""Per-question outcomes: one compact record per document of every task an evaluation scored, kept so that two
runs can be compared question by question (paired tests), not only by their accuracies.

A record has short keys (gzip JSONL is ~10-20 bytes a document): `i` the document's index in the task (lm-eval's
doc_id), `id` the document's own id where the task has one, `t` the gold target, `p` the prediction (for
multiple-choice tasks the index of the choice with the highest log-likelihood: lm-eval's own `acc` pick), and one
0/1 value per metric, named as in eval.json's rows (`acc`, `acc_norm`; `metric/filter` for a filter other than
none). The 0/1 values are lm-eval's own per-document scores, so the mean of a task's `acc` equals its eval.json
row exactly. Files: `<folder>/samples/<task>.jsonl.gz`, beside the folder's eval.json.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from owlore_bench.errors import UserError
from owlore_bench.results import atomic_path, read_json

SAMPLES_DIR = "samples"
SUFFIX = ".jsonl.gz"
FIELDS = ("i", "id", "t", "p")  # the keys that are not metrics


def samples_path(folder: str | Path, task: str) -> Path:
    return Path(folder) / SAMPLES_DIR / f"{task}{SUFFIX}"


# ---------------------------------------------------------------- from lm-eval
def records_from_results(results: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """{task: records sorted by document index} of an lm-eval results dict made with log_samples=True.

    lm-eval logs one entry per document and filter; the entries of one document merge into one record."""
    by_task = {}
    for task, entries in (results.get("samples") or {}).items():
        merged: dict[int, dict[str, Any]] = {}
        for entry in entries:
            record = merged.setdefault(int(entry["doc_id"]), _record_base(entry))
            suffix = "" if entry.get("filter", "none") == "none" else f"/{entry['filter']}"
            for metric in entry.get("metrics", []):
                value = entry.get(metric)
                if isinstance(value, (bool, int, float)):
                    record[f"{metric}{suffix}"] = int(value) if float(value) in (0.0, 1.0) else float(value)
        by_task[task] = [merged[index] for index in sorted(merged)]
    return by_task


def _record_base(entry: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {"i": int(entry["doc_id"])}
    doc = entry.get("doc")
    if isinstance(doc, dict) and isinstance(doc.get("id"), (str, int)):
        record["id"] = doc["id"]
    record["t"] = _plain(entry.get("target"))
    record["p"] = prediction(entry)
    return record


def prediction(entry: dict[str, Any]) -> Any:
    """The model's answer of one logged document: for log-likelihood responses ((ll, is_greedy) per choice) the
    argmax choice index, computed as lm-eval computes `acc` (np.argmax: the first of tied choices; with
    acc_mutual_info only the first half, the conditional log-likelihoods); else the first filtered response."""
    import numpy as np

    responses = entry.get("filtered_resps") or entry.get("resps") or []
    if responses and all(isinstance(r, (list, tuple)) and len(r) == 2 and isinstance(r[0], float) for r in responses):
        lls = [r[0] for r in responses]
        if "acc_mutual_info" in entry.get("metrics", []):
            lls = lls[: len(lls) // 2]
        return int(np.argmax(lls))
    first = responses[0] if responses else None
    while isinstance(first, (list, tuple)) and first:
        first = first[0]
    return _plain(first)


def _plain(value: Any) -> Any:
    """A JSON-ready copy of a target or response (numpy scalars become Python numbers, other objects text)."""
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item"):
        return value.item()
    return str(value)


# ---------------------------------------------------------------- the files
def write_samples(folder: str | Path, samples_by_task: dict[str, list[dict[str, Any]]]) -> list[Path]:
    """Write each task's records to `<folder>/samples/<task>.jsonl.gz` (atomic, byte-reproducible: gzip mtime 0)."""
    paths = []
    for task, records in samples_by_task.items():
        path = samples_path(folder, task)
        text = "".join(json.dumps(record, separators=(",", ":")) + "\n" for record in records)
        with atomic_path(path) as temp:
            temp.write_bytes(gzip.compress(text.encode(), mtime=0))
        paths.append(path)
    return paths


def read_samples(folder: str | Path, task: str) -> list[dict[str, Any]]:
    """The records of one task of an evaluated folder. A folder without them (evaluated before per-question
    outcomes were kept, or not on this task) is one UserError line saying how to re-evaluate it."""
    path = samples_path(folder, task)
    if not path.is_file():
        what = "no per-question outcomes (samples/)" if not path.parent.is_dir() else f"no samples/{path.name}"
        raise UserError(f"{folder}: {what} for task {task}; runs evaluated before outcomes were stored need a "
                        f"re-evaluation: owlore-bench eval --run {folder} --tasks {task} --out {folder} (add the "
                        f"--limit it was evaluated with)")
    with gzip.open(path, "rt") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def stored_tasks(folder: str | Path) -> list[str]:
    """The tasks of `folder`'s eval.json that have stored records, in its row order (all stored tasks, by name,
    when there is no eval.json): a file left by an earlier evaluation on other tasks is not listed."""
    directory = Path(folder) / SAMPLES_DIR
    found = sorted(path.name[: -len(SUFFIX)] for path in directory.glob(f"*{SUFFIX}")) if directory.is_dir() else []
    eval_file = Path(folder) / "eval.json"
    if not eval_file.is_file():
        return found
    order = dict.fromkeys(row["task"] for row in read_json(eval_file).get("rows", []))
    return [task for task in order if task in found]


def outcomes(records: list[dict[str, Any]], metric: str = "acc") -> list[int]:
    """The 0/1 column of one metric, in document order; a metric the records lack is one UserError line."""
    missing = [record["i"] for record in records if metric not in record]
    if missing:
        known = sorted({key for record in records for key in record if key not in FIELDS})
        raise UserError(f"metric {metric}: not stored for document {missing[0]}; stored: {', '.join(known) or 'none'}")
    return [record[metric] for record in records]


def require_samples(folder: str | Path, tasks: list[str] | None = None) -> None:
    """One UserError line unless `folder` is an evaluated folder holding samples/ (runs evaluated before
    per-question outcomes were stored have none: the line says how to re-evaluate them)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder; name a run folder holding eval.json and samples/, "
                        f"e.g. runs/quickstart/lora/seed-0")
    if not (folder / SAMPLES_DIR).is_dir():
        if not tasks and (folder / "eval.json").is_file():  # name the tasks it was evaluated on
            rows = read_json(folder / "eval.json").get("rows", [])
            tasks = [task for task in dict.fromkeys(row["task"] for row in rows) if not task.endswith("_avg")]
        raise UserError(f"{folder}: no per-question outcomes (samples/): it was evaluated before they were stored; "
                        f"re-evaluate it: owlore-bench eval --run {folder} --tasks {','.join(tasks or ['TASKS'])} "
                        f"--out {folder} (with the --limit it was evaluated with)")


def paired_outcomes(folder_a: str | Path, folder_b: str | Path, task: str,
                    metric: str = "acc") -> tuple[list[int], list[int]]:
    """The 0/1 outcomes of one task in two evaluated folders, question by question. Folders evaluated on
    different questions (another --limit, other data) are one UserError line naming the task and the counts."""
    records_a, records_b = read_samples(folder_a, task), read_samples(folder_b, task)
    if len(records_a) != len(records_b):
        raise UserError(f"task {task}: {folder_a} was evaluated on {len(records_a)} questions, {folder_b} on "
                        f"{len(records_b)}; evaluate both on the same questions (the same --limit) to compare them")
    for position, (record_a, record_b) in enumerate(zip(records_a, records_b)):
        seen_a, seen_b = ([record.get(key) for key in ("i", "id", "t")] for record in (record_a, record_b))
        if seen_a != seen_b:
            raise UserError(f"task {task}: both runs have {len(records_a)} questions but not the same ones (question "
                            f"{position}: index, id, target {seen_a} against {seen_b}); evaluate both on the same data")
    return outcomes(records_a, metric), outcomes(records_b, metric)
