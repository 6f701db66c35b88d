"""Per-question outcomes of a table row: each ok seed's 0/1 answers to one task, read from the run folders'
samples/<task>.jsonl.gz (owlore_bench/evaluation/samples.py), as one seeds x questions matrix.

A row whose runs were evaluated before outcomes were stored has none. With one seed its cells still get their
Wilson interval, which needs only the count of correct answers and n (eval.json's value × n): `counts_outcomes`
stands in k ones and n − k zeros on questions no other row shares, so it never enters a paired test (the
pairing is unknown) or a seed-level bootstrap. `missing_hint` is the one line that says how to re-evaluate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from owlore_bench.evaluation.samples import outcomes, read_samples, samples_path
from owlore_bench.reporting.loading import Results, Run


@dataclass(frozen=True)
class TaskOutcomes:
    """One row's outcomes on one task: `matrix` seeds x questions (0/1), `questions` (index, id, target) each,
    `seed_ids` the training seed of each matrix row (empty where unknown)."""

    questions: tuple
    matrix: np.ndarray
    seed_ids: tuple = ()

    @property
    def n(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def seeds(self) -> int:
        return int(self.matrix.shape[0])


RowOutcomes = dict[str, TaskOutcomes]  # task → outcomes


def run_outcomes(runs: list[Run], task: str, metric: str) -> TaskOutcomes | None:
    """The ok seeds' outcomes of one task; None when a seed has no stored records for it, or when the seeds were
    evaluated on different questions (no matrix to stack)."""
    ok = [run for run in runs if run.status == "ok"]
    if not ok or not all(samples_path(run.path, task).is_file() for run in ok):
        return None
    records = [read_samples(run.path, task) for run in ok]
    keys = [tuple((r.get("i"), r.get("id"), str(r.get("t"))) for r in seed) for seed in records]
    if any(key != keys[0] for key in keys) or not keys[0] or any(metric not in r for s in records for r in s):
        return None
    return TaskOutcomes(keys[0], np.array([outcomes(seed, metric) for seed in records], dtype=float),
                        tuple(run.seed for run in ok))


def counts_outcomes(runs: list[Run], task: str, metric: str) -> TaskOutcomes | None:
    """A one-seed row's outcomes rebuilt from eval.json's accuracy and n alone (see the module doc), on questions
    named after the run so that no other row pairs with them; None with several seeds or no such eval row."""
    ok = [run for run in runs if run.status == "ok"]
    rows = [row for run in ok for row in run.eval_rows if (row.get("task"), row.get("metric")) == (task, metric)]
    if len(ok) != 1 or len(rows) != 1 or not rows[0].get("n"):
        return None
    n = int(rows[0]["n"])
    correct = round(float(rows[0]["value"]) * n)
    questions = tuple(("counts only", str(ok[0].path), index) for index in range(n))
    return TaskOutcomes(questions, np.array([[1.0] * correct + [0.0] * (n - correct)]), (ok[0].seed,))


def table_outcomes(results: Results, tasks: dict[str, dict]) -> dict[str, RowOutcomes]:
    """{row: {task: outcomes}} for the plain (non-group) task columns, from samples/ or else (one seed) from the
    eval.json counts; tasks without either are left out."""
    found = {}
    for name, runs in results.rows.items():
        row = {}
        for task, info in tasks.items():
            if not info["group"]:
                task_outcomes = (run_outcomes(runs, task, info["metric"])
                                 or counts_outcomes(runs, task, info["metric"]))
                if task_outcomes is not None:
                    row[task] = task_outcomes
        found[name] = row
    return found


def seeds_pair(*rows: TaskOutcomes) -> bool:
    """True when the rows were trained with the same seeds, in the same order (seed s of one pairs with seed s of
    the other: same data order, same initial adapters), and there are several."""
    return len({row.seed_ids for row in rows}) == 1 and len(rows[0].seed_ids) > 1


def same_questions(*rows: TaskOutcomes | None) -> bool:
    """True when every row has outcomes and they are on the same questions (a paired test is possible)."""
    return all(row is not None for row in rows) and len({row.questions for row in rows}) == 1


def missing_hint(results: Results, tasks: Iterable[str]) -> str | None:
    """One line when ok runs with eval results lack samples/ (evaluated before outcomes were kept), else None."""
    plain = [task for task in tasks if not task.endswith("_avg")]
    lacking = [run for runs in results.rows.values() for run in runs
               if run.status == "ok" and run.eval_rows and plain
               and not all(samples_path(run.path, task).is_file() for task in plain)]
    if not lacking:
        return None
    example = lacking[0].path
    return (f"{len(lacking)} run(s) have no per-question outcomes (samples/), so their cells show Wilson intervals "
            f"from eval.json's counts (one seed) but take part in no paired test: rerun the experiment with this "
            f"version (owlore-bench run CONFIG), or re-evaluate a run "
            f"that kept its model: owlore-bench eval --run RUN --tasks {','.join(plain)} --out RUN (with its eval "
            f"--limit), e.g. RUN = {example}")
