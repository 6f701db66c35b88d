"""Comparison tables from the results store, in the paper's layout (markdown / CSV / LaTeX via pandas).

Reads only the stored JSON of finished runs (never re-runs anything):
results/<experiment>/experiment.json and <label>/seed-<s>/{summary.json, eval.json, metrics.jsonl}.
Rows are labels (base first, full FT next, then the experiment's method order), columns are the tasks, their
Avg, peak memory, trainable parameters and tokens/s; each cell is the mean ± std over seeds.
Units in the numbers table: accuracy in percent, memory in bytes, throughput in tokens per second.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

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
        eval_rows = _read(eval_file).get("rows", []) if eval_file.is_file() else []
        runs.append(Run(name, run_dir.parent.name, _seed_of(run_dir), run_dir, _read(run_dir / "summary.json"),
                        eval_rows))
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


# ---------------------------------------------------------------- numbers


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
    """One run's numbers: accuracy per task and Avg (percent), peak memory (bytes), params, tokens/s."""
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
    values["tokens_per_s"] = run.summary.get("tokens_per_s")
    return {key: math.nan if value is None else float(value) for key, value in values.items()}


def status_text(runs: list[Run]) -> str:
    """'ok' when every seed finished ok; the status itself when none did ('diverged', 'diverged/oom');
    'k/n <status>' when some did not."""
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


def table_from_results(results: Results, metric: str = "acc", delta: bool = False,
                       tasks: list[str] | None = None) -> pd.DataFrame:
    """The numbers table: index = row names in display order; columns are (key, 'mean'|'std'|'n') for each task,
    Avg, peak_mem_bytes, trainable_params, tokens_per_s (and delta_avg_vs_full_ft), plus (experiment|label|
    method|status|runs|ok_runs, ''). Accuracy in percent, memory in bytes. `tasks` picks the task columns
    (default: see _shown_tasks). attrs: tasks (metric, shots, group per shown task), hidden_tasks (stored but not
    shown), skipped (incomplete run folders), metric (asked for)."""
    if metric not in METRICS:
        raise UserError(f"--metric: unknown metric '{metric}'; use one of {', '.join(METRICS)}")
    columns = task_columns(results, metric, tasks)
    judges = mt_bench_judges(results)
    keys = [*columns, AVG] if columns else []
    keys += [MT_BENCH + slug for slug in judges] + list(EXTRA_COLUMNS)
    records = {}
    for name, runs in results.rows.items():
        records[name] = {("experiment", ""): runs[0].experiment, ("label", ""): runs[0].label,
                         ("method", ""): runs[0].method, ("status", ""): status_text(runs),
                         ("runs", ""): len(runs), ("ok_runs", ""): sum(run.status == "ok" for run in runs),
                         **_row_stats(runs, keys, columns)}
    table = pd.DataFrame.from_dict(records, orient="index")
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    stored = {row["task"] for runs in results.rows.values() for run in runs for row in run.eval_rows}
    table.attrs.update(tasks=columns, mt_bench_judges=judges, hidden_tasks=sorted(stored - set(columns)), metric=metric,
                       skipped=[str(path) for path in results.skipped])
    if delta and columns:
        _add_delta(table)
    return table


def mt_bench_judges(results: Results) -> dict[str, dict[str, Any]]:
    """{judge slug: judge identity} of every MT-Bench scores file among the runs, in slug order."""
    return {slug: scores.get("judge", {}) for runs in results.rows.values() for run in runs
            for slug, scores in sorted(run.mt_bench.items())}


def build_table(dirs: Iterable[str | Path], metric: str | None = None, delta: bool = False,
                tasks: list[str] | None = None) -> pd.DataFrame:
    """The numbers table of one or more experiment folders (see table_from_results). `metric` None: the
    experiments' own choice (experiment.json 'metric' or 'eval.metric'), else 'acc'."""
    results = load_results(dirs)
    return table_from_results(results, metric or default_metric(results), delta, tasks)


def default_metric(results: Results) -> str:
    """acc_norm when an experiment.json asks for it (key 'metric' or 'eval.metric'), else acc."""
    for experiment in results.experiments.values():
        evaluation = experiment.get("eval") if isinstance(experiment.get("eval"), dict) else {}
        if (experiment.get("metric") or evaluation.get("metric")) == "acc_norm":
            return "acc_norm"
    return "acc"


# ---------------------------------------------------------------- display


@dataclass(frozen=True)
class _Style:
    """How one output format writes bold (a format string with {}) and escapes plain text."""

    bold: str
    escape: Any = str


_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$",
                   "Δ": r"$\Delta$"}
MARKDOWN = _Style(bold="**{}**")
LATEX = _Style(bold=r"\textbf{{{}}}", escape=lambda text: "".join(_LATEX_SPECIALS.get(c, c) for c in str(text)))


def value_columns(table: pd.DataFrame) -> dict[str, tuple[str, str, str | None]]:
    """key → (title, kind, better) for every value column of the table, in display order."""
    columns = {task: (task, "pct", "higher") for task in table.attrs.get("tasks", {})}
    if columns:
        columns[AVG] = (AVG, "pct", "higher")
    for slug, identity in table.attrs.get("mt_bench_judges", {}).items():
        columns[MT_BENCH + slug] = (f"MT-Bench ({identity.get('model', slug)})", "score", "higher")
    columns.update(EXTRA_COLUMNS)
    if (DELTA, "mean") in table.columns:
        columns[DELTA] = ("Δ Avg vs full FT", "delta", None)
    return columns


def format_number(value: float, kind: str, scale: float | None = None) -> str:
    """A mean or std in display units: percent 1 decimal, GiB 2 decimals (3 significant digits below 0.1 GiB,
    decided by `scale`, the row's mean, so a std matches its mean), counts compact, tokens/s whole."""
    if kind == "gib":
        scale = abs(value if scale is None else scale) / GIB
        decimals = 2 if scale >= 0.1 or scale == 0 else 2 - math.floor(math.log10(scale))
        return f"{value / GIB:.{decimals}f}"
    if kind == "count":
        for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
            if abs(value) >= size:
                return f"{value / size:.2f}{suffix}"
        return f"{value:.0f}"
    if kind == "rate":
        return f"{value:,.0f}"
    if kind == "delta":
        return f"{value:+.1f}"
    if kind == "score":
        return f"{value:.2f}"
    return f"{value:.1f}"


def _best_names(table: pd.DataFrame, key: str, kind: str, better: str | None) -> set[str]:
    """Rows whose displayed mean is the best of the column (ties all count)."""
    if better is None or (key, "mean") not in table.columns:
        return set()
    means = table.loc[table[("status", "")] == "ok", (key, "mean")].dropna()  # rows with a failed seed: no
    if means.empty:
        return set()
    shown = means.map(lambda value: float(format_number(value, kind).replace(",", "").rstrip("BMK")))
    best = shown.max() if better == "higher" else shown.min()
    return set(shown.index[shown == best])


def _cell(row: pd.Series, key: str, kind: str) -> str:
    mean, std, n = row[(key, "mean")], row[(key, "std")], int(row[(key, "n")])
    if n == 0 or math.isnan(mean):
        return "—"
    text = format_number(mean, kind)
    if n > 1 and not math.isnan(std) and kind not in ("delta", "count"):  # counts do not vary with the seed
        text += f" ± {format_number(std, kind, scale=mean)} ({n})"
    return text


def display_frame(table: pd.DataFrame, style: _Style = MARKDOWN) -> pd.DataFrame:
    """Strings for display: 'Method' then one column per value column; best per column in bold; a row with no
    ok run shows its status in every cell, a row with some failed seeds says so after its name."""
    columns = value_columns(table)
    best = {key: _best_names(table, key, kind, better) for key, (_, kind, better) in columns.items()}
    references = set(table.attrs.get("delta_references", []))
    lines = []
    for name, row in table.iterrows():
        status, none_ok = row[("status", "")], row[("ok_runs", "")] == 0
        line = {"Method": style.escape(name if status == "ok" or none_ok else f"{name} ({status})")}
        for key, (title, kind, _) in columns.items():
            header = style.escape(title)
            if none_ok:
                line[header] = style.escape(status)
            elif key == DELTA and name in references:
                line[header] = "ref"
            else:
                text = style.escape(_cell(row, key, kind))
                line[header] = style.bold.format(text) if name in best[key] else text
        lines.append(line)
    return pd.DataFrame(lines)


def caption(table: pd.DataFrame) -> str:
    """What the numbers are: metric and shots per task, how cells aggregate seeds, what is bold, memory units."""
    by_setting = defaultdict(list)
    for task, info in table.attrs.get("tasks", {}).items():
        shots = "shots unknown" if info["num_fewshot"] is None else f"{info['num_fewshot']}-shot"
        by_setting[f"{info['metric']}, {shots}"].append(task)
    no_scores = "No MT-Bench or lm-eval results." if not table.attrs.get("mt_bench_judges") else ""
    parts = ["Accuracy (%): " + "; ".join(f"{setting} ({', '.join(tasks)})" for setting, tasks in
                                         by_setting.items()) + "." if by_setting else no_scores]
    plain = [task for task, info in table.attrs.get("tasks", {}).items() if not info["group"]]
    if plain:
        parts.append(f"Avg = mean of the {len(plain)} task columns (group averages excluded).")
    parts.append("Cells: mean ± sample std over seeds, (n) = seeds when n > 1. Bold: best per column (accuracy "
                 "and tokens/s higher, memory lower). Peak mem: peak of the weights + gradients + optimizer + "
                 "activations ledger, GiB = 2^30 bytes.")
    for slug, identity in table.attrs.get("mt_bench_judges", {}).items():
        from owlore_bench.mtbench.judges import describe

        parts.append(f"MT-Bench ({identity.get('model', slug)}): mean judge score 1-10 over both turns, FastChat "
                     f"single-answer grading, judge {describe(identity) if identity else slug}; per category in "
                     f"mt_bench.md.")
    if (DELTA, "mean") in table.columns:
        parts.append("Δ: Avg minus the experiment's full FT Avg, percentage points.")
    if table.attrs.get("hidden_tasks"):
        parts.append(f"{len(table.attrs['hidden_tasks'])} stored task row(s) not shown (subtasks; pick columns "
                     f"with --tasks).")
    if table.attrs.get("skipped"):
        parts.append(f"{len(table.attrs['skipped'])} incomplete run(s) without summary.json skipped.")
    return " ".join(parts)


def render_markdown(table: pd.DataFrame) -> str:
    """The caption and the table as a GitHub markdown pipe table (what `owlore-bench report` prints)."""
    frame = display_frame(table, MARKDOWN)
    align = ["left"] + ["right"] * (len(frame.columns) - 1)
    return f"{caption(table)}\n\n{frame.to_markdown(index=False, disable_numparse=True, colalign=align)}\n"


def render_latex(table: pd.DataFrame) -> str:
    """A booktabs LaTeX table with the caption (needs \\usepackage{booktabs})."""
    frame = display_frame(table, LATEX)
    return frame.to_latex(index=False, escape=False, caption=LATEX.escape(caption(table)), label="tab:owlore-bench",
                          column_format="l" + "r" * (len(frame.columns) - 1))


def csv_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The numbers flattened to snake_case columns: <column>_mean/_std/_n, task columns named
    <task>_<metric>[_<k>shot] (percent), peak_mem_bytes (bytes)."""
    flat = pd.DataFrame({"row": table.index})
    for key in ("experiment", "label", "method", "status", "runs", "ok_runs"):
        flat[key] = table[(key, "")].to_numpy()
    tasks = table.attrs.get("tasks", {})
    for key in value_columns(table):
        name = "avg" if key == AVG else key.replace(MT_BENCH, "mt_bench_")
        if key in tasks:
            shots = tasks[key]["num_fewshot"]
            name = f"{key}_{tasks[key]['metric']}" + ("" if shots is None else f"_{shots}shot")
        for stat in ("mean", "std", "n"):
            flat[f"{name}_{stat}"] = table[(key, stat)].to_numpy()
    return flat


def write_text_atomic(path: Path, text: str) -> None:
    """Temp file + rename: a reader never sees half a table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "w") as out:
        out.write(text)
    os.replace(temp, path)


def write_tables(table: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """table.md, table.csv and table.tex in out_dir; returns their paths."""
    out_dir = Path(out_dir)
    paths = [out_dir / "table.md", out_dir / "table.csv", out_dir / "table.tex"]
    write_text_atomic(paths[0], render_markdown(table))
    write_text_atomic(paths[1], csv_frame(table).to_csv(index=False))
    write_text_atomic(paths[2], render_latex(table))
    return paths
