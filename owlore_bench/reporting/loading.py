"""The results store, read: one experiment folder (or several) into labelled rows of finished runs.

Reads only the stored JSON of finished runs (never re-runs anything):
results/<experiment>/experiment.json and <label>/seed-<s>/{summary.json, eval.json, metrics.jsonl}.
Rows are labels (base first, full FT next, then the experiment's method order).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from owlore_bench.errors import UserError, did_you_mean
from owlore_bench.results import read_json, read_jsonl

GIB = 2**30  # bytes; used only for display
METRICS = ("acc", "acc_norm")
BASE_LABEL = "base"
FULL_FT_METHOD = "full_ft"
AVG = "Avg"
MAX_TASK_COLUMNS = 12  # more stored tasks than this (MMLU's 57 subjects) fold into their group columns
DELTA = "delta_avg_vs_full_ft"
# non-task columns: key in the numbers table → (display title, display kind, which direction is better)
MT_BENCH = "mt_bench:"  # column key prefix, one column per judge (judges are never averaged together)


def mt_bench_title(key: str) -> str:
    """The label of an MT-Bench column (key MT_BENCH + judge slug) in every table, numbers and deltas alike:
    'MT-Bench (<slug>)', the judge's file name (two judges that differ only in an option differ here too)."""
    return f"MT-Bench ({key.removeprefix(MT_BENCH)})"
EXTRA_COLUMNS = {
    "peak_mem_bytes": ("Peak mem (GiB)", "gib", "lower"),
    "trainable_params": ("Trainable params", "count", None),
    "tokens_per_s": ("Tokens/s", "rate", "higher"),
}


@dataclass
class Run:
    """One finished (method, seed) run: its summary, evaluation rows and, on demand, its per-step metrics."""

    experiment: str
    label: str
    seed: int
    path: Path
    summary: dict[str, Any]
    eval_rows: list[dict[str, Any]]
    eval_protocol: dict[str, Any] | None = None  # eval.json's `protocol` (evaluation/protocol.py); None before it

    @property
    def status(self) -> str:
        return self.summary.get("status", "failed")

    @property
    def method(self) -> str:
        return self.summary.get("method", self.label)

    @cached_property
    def mt_bench(self) -> dict[str, dict[str, Any]]:
        """MT-Bench scores of this run by judge: {judge slug: mt_bench/scores-<slug>.json} (empty without)."""
        return {path.stem.removeprefix("scores-"): _read(path)
                for path in sorted((self.path / "mt_bench").glob("scores-*.json"))}

    @cached_property
    def metrics(self) -> list[dict[str, Any]]:
        """metrics.jsonl, one dict per step (read the first time it is asked for)."""
        return read_jsonl(self.path / "metrics.jsonl")


@dataclass
class Results:
    """Every finished run of one or more experiment folders, grouped into table rows in display order."""

    rows: dict[str, list[Run]]  # display name → runs (seeds), in row order
    skipped: list[Path] = field(default_factory=list)  # run folders without summary.json
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → experiment.json (or {})


# ---------------------------------------------------------------- loading


def _experiment_dirs(directory: Path) -> list[Path]:
    """The experiment folder itself, or (for a folder of experiments such as results/) each one inside it."""
    if not directory.is_dir():
        raise UserError(f"{directory}: no such folder; pass an experiment folder such as results/quickstart")
    if any(directory.glob("*/seed-*")):
        return [directory]
    inner = sorted({path.parent.parent for path in directory.glob("*/*/seed-*")})
    if not inner:
        raise UserError(f"{directory}: no runs (no <label>/seed-<s>/ folders); pass a folder that "
                        f"`owlore-bench run` wrote, such as results/quickstart")
    return inner


def _method_order(experiment: dict[str, Any]) -> list[str]:
    """Labels in the order experiment.json lists its methods (names, {label|name|method: ...} or a mapping)."""
    methods = experiment.get("methods") or []
    if isinstance(methods, dict):
        return list(methods)
    order = []
    for entry in methods:
        if isinstance(entry, str):
            order.append(entry)
        elif isinstance(entry, dict):
            order.append(str(entry.get("label") or entry.get("name") or entry.get("method")))
    return order


def _read(path: Path) -> Any:
    """A stored JSON file; a file that is not JSON (edited by hand?) is a UserError naming it."""
    try:
        return read_json(path)
    except ValueError as error:
        raise UserError(f"{path}: not valid JSON ({error}); restore it or delete its run folder and rerun") from None


def _seed_of(run_dir: Path) -> int:
    number = run_dir.name.removeprefix("seed-")
    return int(number) if number.isdigit() else -1


def _load_experiment(directory: Path) -> tuple[str, dict[str, Any], list[Run], list[Path]]:
    """(name, experiment.json, finished runs, incomplete run folders) of one experiment folder."""
    experiment_file = directory / "experiment.json"
    experiment = _read(experiment_file) if experiment_file.is_file() else {}
    name = str(experiment.get("name") or directory.resolve().name)
    runs, skipped = [], []
    for run_dir in sorted(directory.glob("*/seed-*"), key=lambda p: (p.parent.name, _seed_of(p))):
        if not (run_dir / "summary.json").is_file():
            skipped.append(run_dir)
            continue
        eval_file = run_dir / "eval.json"
        evaluation = _read(eval_file) if eval_file.is_file() else {}
        runs.append(Run(name, run_dir.parent.name, _seed_of(run_dir), run_dir, _read(run_dir / "summary.json"),
                        evaluation.get("rows", []), evaluation.get("protocol")))
    return name, experiment, runs, skipped


def _row_key(run: Run, experiment_index: int, order: list[str]) -> tuple:
    """Sort key: base first, full FT next, then the experiment's method order, then alphabetical."""
    rank = 0 if run.label == BASE_LABEL or run.method == BASE_LABEL else 1 if run.method == FULL_FT_METHOD else 2
    position = order.index(run.label) if run.label in order else len(order)
    return rank, experiment_index, position, run.label


def load_results(dirs: Iterable[str | Path]) -> Results:
    """Read the finished runs of the given experiment folders. Labels that occur in more than one experiment
    are shown as '<experiment>/<label>'. Raises UserError when a folder holds no finished run."""
    experiments: dict[str, dict[str, Any]] = {}
    loaded: list[tuple[Run, tuple]] = []
    skipped: list[Path] = []
    for directory in dirs:
        for experiment_dir in _experiment_dirs(Path(directory)):
            name, experiment, runs, incomplete = _load_experiment(experiment_dir)
            if not runs:
                raise UserError(f"{experiment_dir}: no finished runs ({len(incomplete)} incomplete without "
                                f"summary.json); let `owlore-bench run` finish at least one run first")
            if name in experiments:
                raise UserError(f"{experiment_dir}: experiment '{name}' is given twice; pass each folder once")
            experiments[name] = experiment
            order = _method_order(experiment)
            loaded += [(run, _row_key(run, len(experiments), order)) for run in runs]
            skipped += incomplete
    experiments_of = {run.label: {other.experiment for other, _ in loaded if other.label == run.label}
                      for run, _ in loaded}
    rows: dict[str, list[Run]] = {}
    for run, _ in sorted(loaded, key=lambda item: item[1]):
        name = run.label if len(experiments_of[run.label]) == 1 else f"{run.experiment}/{run.label}"
        rows.setdefault(name, []).append(run)
    return Results(rows, skipped, experiments)


def label_seed_runs(experiment_dir: str | Path, label: str) -> dict[int, Path]:
    """{seed: run folder} of one label's ok runs in one experiment folder, in seed order: the finished runs
    (summary.json) `report` reads, less those whose status is not ok. A label without finished runs there is one
    UserError line naming the labels the folder has."""
    directory = Path(experiment_dir)
    _, _, runs, _ = _load_experiment(directory)
    labels = list(dict.fromkeys(run.label for run in runs))
    if label not in labels:
        raise UserError(f"{directory}: no finished run (<label>/seed-<s>/summary.json) of label '{label}'; its "
                        f"labels: {', '.join(labels) or 'none'}." + did_you_mean(label, labels))
    return {run.seed: run.path for run in runs if run.label == label and run.status == "ok"}


def mt_bench_judges(results: Results) -> dict[str, dict[str, Any]]:
    """{judge slug: judge identity} of every MT-Bench scores file among the runs, in slug order."""
    return {slug: scores.get("judge", {}) for runs in results.rows.values() for run in runs
            for slug, scores in sorted(run.mt_bench.items())}
