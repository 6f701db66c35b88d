"""Which evaluated runs two folders name, and their per-question outcomes paired, for `owlore-bench compare` and
`owlore-bench power --pilot`.

RUN_A and RUN_B are two run folders (<experiment>/<label>/seed-<s>, holding eval.json and samples/), or two label
folders (<experiment>/<label>, holding seed-<s>/ runs), or one experiment folder with two labels. Labels pair seed
s of A with seed s of B (the seeds both have an ok run of; a seed only one has is named and left out), except the
base model's label: it is evaluated once (seed-0, no training), so that run pairs with every seed of the other label.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from owlore_bench.errors import UserError
from owlore_bench.evaluation.samples import SAMPLES_DIR, paired_outcomes, read_samples, require_samples, stored_tasks
from owlore_bench.reporting.loading import BASE_LABEL, label_seed_runs

KINDS = ("a run folder (eval.json and samples/, e.g. runs/quickstart/lora/seed-0), a label folder (seed-<s>/ "
         "runs, e.g. runs/quickstart/lora) or, with --labels A,B, an experiment folder (<label>/seed-<s>/)")


@dataclass(frozen=True)
class Comparison:
    """The header lines (what A and B are, which seeds pair) and the (A run, B run) folders compared."""

    header: list[str]
    pairs: list[tuple[Path, Path]]
    seeds: list[int] | None = None  # the paired seeds; None for two run folders


def _kind(folder: Path) -> str:
    """run, label or experiment: what `folder` holds; a folder that is none of them is one UserError line."""
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder; name {KINDS}")
    if any((folder / name).exists() for name in ("eval.json", SAMPLES_DIR, "summary.json")):
        return "run"
    if any(path.is_dir() for path in folder.glob("seed-*")):
        return "label"
    if any(path.is_dir() for path in folder.glob("*/seed-*")):
        return "experiment"
    raise UserError(f"{folder}: holds no run; expected {KINDS}")


def resolve(run_a: str, run_b: str | None, labels: list[str] | None) -> Comparison:
    """What RUN_A, RUN_B and --labels name: two run folders, or two labels (seeds paired)."""
    a = Path(run_a)
    if labels is not None:
        if run_b is not None or len(labels) != 2:
            raise UserError(f"--labels: give one experiment folder and two labels, e.g. compare runs/quickstart "
                            f"--labels owlore,lora (got {'RUN_B ' + run_b + ', ' if run_b else ''}"
                            f"{len(labels)} label(s))")
        if _kind(a) != "experiment":
            raise UserError(f"--labels: {a} is not an experiment folder (<label>/seed-<s>/ inside); pass the "
                            f"folder `owlore-bench run` wrote, e.g. runs/quickstart")
        return _seed_pairs(*((labels[k], a / labels[k], label_seed_runs(a, labels[k])) for k in (0, 1)))
    if run_b is None:
        hint = ("; it is an experiment folder: name two of its labels with --labels A,B"
                if _kind(a) == "experiment" else "")
        raise UserError(f"RUN_B: missing; give two run folders, two label folders, or an experiment folder with "
                        f"--labels A,B{hint}")
    b = Path(run_b)
    kinds = (_kind(a), _kind(b))
    if kinds == ("run", "run"):
        return Comparison([f"A: {a}", f"B: {b}"], [(a, b)])
    if kinds == ("label", "label"):
        return _seed_pairs(*((folder.name, folder, label_seed_runs(folder.parent, folder.name)) for folder in (a, b)))
    raise UserError(f"{a} is {_article(kinds[0])} folder, {b} {_article(kinds[1])} folder: give two run folders "
                    f"(.../<label>/seed-<s>) or two label folders (.../<label>), or an experiment folder with "
                    f"--labels A,B")


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _seed_pairs(side_a: tuple[str, Path, dict[int, Path]], side_b: tuple[str, Path, dict[int, Path]]) -> Comparison:
    """Seed s of label A against seed s of label B, for the seeds both have an ok run of; one header line per
    seed only one side has."""
    (name_a, folder_a, runs_a), (name_b, folder_b, runs_b) = side_a, side_b
    for name, folder, runs in (side_a, side_b):
        if not runs:
            raise UserError(f"{folder}: label '{name}' has no run with status ok (seed-<s>/summary.json); let "
                            f"`owlore-bench run` finish one first")
    runs_a, runs_b = _base_for_every_seed(name_a, runs_a, runs_b), _base_for_every_seed(name_b, runs_b, runs_a)
    seeds = [seed for seed in runs_a if seed in runs_b]
    if not seeds:
        raise UserError(f"labels {name_a} and {name_b} share no seed (A has {_seed_list(runs_a)}, B has "
                        f"{_seed_list(runs_b)}); seeds pair seed s with seed s: run both with the same seeds")
    header = [f"A: {name_a} ({folder_a})", f"B: {name_b} ({folder_b})",
              f"seeds paired: {_seed_list(seeds)} (both labels have an ok run of each)"]
    if BASE_LABEL in (name_a, name_b):
        header[-1] = (f"seeds paired: {_seed_list(seeds)} (the base model's one evaluation against each seed of "
                      f"{name_b if name_a == BASE_LABEL else name_a})")
    for seed in sorted(set(runs_a) ^ set(runs_b)):
        side = "A" if seed in runs_a else "B"
        header.append(f"seed {seed}: only {side} ({name_a if side == 'A' else name_b}) has an ok run; left out")
    return Comparison(header, [(runs_a[seed], runs_b[seed]) for seed in seeds], seeds)


def _base_for_every_seed(name: str, runs: dict[int, Path], other: dict[int, Path]) -> dict[int, Path]:
    """The base model's label has one run whatever the training seed (it is not trained), so that run stands for
    every seed of the other label; any other label keeps its own runs."""
    if name != BASE_LABEL or len(runs) != 1:
        return runs
    (only,) = runs.values()
    return {seed: only for seed in other} or runs


def _seed_list(seeds) -> str:
    return ", ".join(str(seed) for seed in seeds)


def compared_tasks(pairs: list[tuple[Path, Path]], tasks: list[str] | None) -> list[str]:
    """`tasks`, else every task all compared folders have outcomes for; a folder without samples/ is one line."""
    folders = [folder for pair in pairs for folder in pair]
    for folder in folders:
        require_samples(folder, tasks)
    if tasks:
        return tasks
    shared = [set(stored_tasks(folder)) for folder in folders[1:]]
    found = [task for task in stored_tasks(folders[0]) if all(task in other for other in shared)]
    if not found:
        raise UserError(f"{' and '.join(map(str, folders))}: no task has per-question outcomes in all of them; "
                        f"name them with --tasks, or evaluate them on the same tasks (owlore-bench eval --run RUN "
                        f"--out RUN)")
    return found


def seed_matrices(comparison: Comparison, task: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """A's and B's 0/1 outcomes of one task, each a seeds x questions matrix (row k: the k-th paired seed; one row
    for two run folders), question q of A paired with question q of B."""
    rows = [paired_outcomes(folder_a, folder_b, task, metric) for folder_a, folder_b in comparison.pairs]
    if len({len(a) for a, _ in rows}) != 1:
        raise UserError(f"task {task}: the paired seeds were evaluated on different numbers of questions "
                        f"({', '.join(str(len(a)) for a, _ in rows)}); evaluate every seed with the same --limit")
    return np.array([a for a, _ in rows], dtype=float), np.array([b for _, b in rows], dtype=float)


def question_keys(comparison: Comparison, tasks: list[str]) -> dict[str, tuple]:
    """{task: its questions (index, id, target each)} as A's first run stored them (families.datasets)."""
    first = comparison.pairs[0][0]
    return {task: tuple((r.get("i"), r.get("id"), str(r.get("t"))) for r in read_samples(first, task))
            for task in tasks}
