"""`owlore-bench compare RUN_A RUN_B`: do two evaluated runs, or two labels, differ? Per task and for the Avg
column: the difference in points with its 95 % interval and p-value (one method each, so they agree), and the
Holm-adjusted p, all from the per-question outcomes each evaluation stores in samples/
(owlore_bench/evaluation/samples.py). The same tests as the report's delta table (reporting/deltas.py).

RUN_A and RUN_B are two run folders (<experiment>/<label>/seed-<s>, holding eval.json and samples/), or two label
folders (<experiment>/<label>, holding seed-<s>/ runs), or one experiment folder with --labels A,B
(reporting/pairs.py). Labels pair seed s of A with seed s of B; the unit of the test is then the (seed,
question) pair, resampled seeds first, then questions.
"""

from __future__ import annotations

import numpy as np

from owlore_bench.errors import UserError
from owlore_bench.reporting import bootstrap, families, statistics
from owlore_bench.reporting.pairs import Comparison, compared_tasks, question_keys, resolve, seed_matrices

EXAMPLES = """examples:
  owlore-bench compare runs/quickstart/owlore/seed-0 runs/quickstart/lora/seed-0
  owlore-bench compare runs/sweep/owlore runs/sweep/lora       # two labels, seed s against seed s
  owlore-bench compare runs/sweep --labels owlore,lora         # the same, by label name
  owlore-bench compare RUN_A RUN_B --tasks boolq_labels,piqa_labels --metric acc_norm
  owlore-bench eval --run RUN --tasks arc_easy_choices --out RUN   # a run evaluated before samples/ existed
"""
ALPHA = families.ALPHA  # the '*' marker: Holm-adjusted p below this (Avg: its own p)
HEADER = ("task", "n", "A % [95%]", "B % [95%]", "Δ pts", "95% CI", "p", "Holm p", "")


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def add_parser(subparsers, help_text: str) -> None:
    parser = subparsers.add_parser("compare", help=help_text,
                                   description="Compare two evaluated run folders (or two labels, seed by seed) "
                                               "question by question: difference in points, its interval and "
                                               "p-value (exact McNemar for one seed, else a seeds-then-questions "
                                               "bootstrap) and Holm p.",
                                   epilog=EXAMPLES)
    parser.add_argument("run_a", metavar="RUN_A", help="run folder holding eval.json and samples/ (e.g. "
                                                       "runs/quickstart/owlore/seed-0), label folder holding "
                                                       "seed-<s>/ runs (runs/quickstart/owlore), or, with "
                                                       "--labels, the experiment folder (runs/quickstart)")
    parser.add_argument("run_b", metavar="RUN_B", nargs="?",
                        help="the run or label folder to compare against (Δ = A - B); none with --labels")
    parser.add_argument("--labels", type=_names, metavar="A,B",
                        help="two labels of the experiment folder RUN_A, compared seed by seed (Δ = A - B)")
    parser.add_argument("--tasks", type=_names,
                        help="comma-separated tasks (default: every task all compared runs have outcomes for)")
    parser.add_argument("--metric", default="acc", help="per-question metric: acc (default) or acc_norm")
    parser.add_argument("--n-boot", dest="n_boot", type=int, default=statistics.N_BOOT,
                        help=f"bootstrap resamples, at least {bootstrap.minimum_resamples()} (default "
                             f"{statistics.N_BOOT})")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.set_defaults(run=run)


def _accuracy(matrix: np.ndarray, n_boot: int, seed: int) -> str:
    """'57.0 [47.2, 66.3]': Wilson for one seed, else the seeds-then-questions bootstrap (as the report)."""
    if matrix.shape[0] == 1:
        low, high = (100 * bound for bound in statistics.wilson_interval(int(matrix.sum()), matrix.shape[1]))
    else:
        _, low, high = statistics.seed_question_interval([matrix], n_boot, seed)
    return f"{100 * matrix.mean():.1f} [{low:.1f}, {high:.1f}]"


def _p(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def task_differences(matrices: dict[str, tuple[np.ndarray, np.ndarray]], n_boot: int = statistics.N_BOOT,
                     seed: int = 0) -> dict[str, statistics.Difference]:
    """Per task, A - B: exact McNemar and its interval for one seed, else the two-level bootstrap (seeds paired)."""
    return {task: statistics.paired_difference(a[0], b[0]) if a.shape[0] == 1
            else statistics.seed_question_difference([a], [b], True, n_boot, seed)
            for task, (a, b) in matrices.items()}


def comparison_lines(matrices: dict[str, tuple[np.ndarray, np.ndarray]], dataset_of: dict[str, str] | None = None,
                     n_boot: int = statistics.N_BOOT, seed: int = 0) -> list[tuple[str, ...]]:
    """The table's cells: one line per task (Holm over its datasets, families.py), then the Avg line (two-level
    bootstrap over every task, tasks in name order as the report takes them; one task: that task's test; not
    adjusted)."""
    differences = task_differences(matrices, n_boot, seed)
    adjusted = families.holm_by_dataset({task: d.p_value for task, d in differences.items()}, dataset_of or {})
    lines = []
    for task, difference in differences.items():
        a, b = matrices[task]
        lines.append((task, str(a.size), _accuracy(a, n_boot, seed), _accuracy(b, n_boot, seed),
                      f"{difference.points:+.1f}", f"[{difference.low:+.1f}, {difference.high:+.1f}]",
                      _p(difference.p_value), _p(adjusted[task]), "*" if adjusted[task] < ALPHA else "n.s."))
    tasks = sorted(matrices)
    average = differences[tasks[0]] if len(tasks) == 1 else statistics.seed_question_difference(
        [matrices[t][0] for t in tasks], [matrices[t][1] for t in tasks], True, n_boot, seed)
    mean_a, mean_b = (np.mean([100 * matrices[t][k].mean() for t in tasks]) for k in (0, 1))
    lines.append((f"Avg ({len(tasks)} tasks)", str(sum(matrices[t][0].size for t in tasks)), f"{mean_a:.1f}",
                  f"{mean_b:.1f}", f"{average.points:+.1f}", f"[{average.low:+.1f}, {average.high:+.1f}]",
                  _p(average.p_value), "—", "*" if average.p_value < ALPHA else "n.s."))
    return lines


def format_lines(lines: list[tuple[str, ...]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(HEADER, *lines)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
                     for line in [HEADER, *lines])


def run(args) -> int:
    if args.n_boot < bootstrap.minimum_resamples():
        raise UserError(f"--n-boot: at least {bootstrap.minimum_resamples()} resamples for a 95 % interval (got "
                        f"{args.n_boot})")
    comparison = resolve(args.run_a, args.run_b, args.labels)
    tasks = compared_tasks(comparison.pairs, args.tasks)
    matrices = {task: seed_matrices(comparison, task, args.metric) for task in tasks}
    dataset_of = families.datasets(question_keys(comparison, tasks))
    print("\n".join([*comparison.header, f"metric: {args.metric}, Δ = A - B in points"]))
    print(format_lines(comparison_lines(matrices, dataset_of, args.n_boot, args.seed)))
    print(footnote(comparison, tasks, dataset_of, args.n_boot, args.seed))
    return 0


def footnote(comparison: Comparison, tasks: list[str], dataset_of: dict[str, str], n_boot: int, seed: int) -> str:
    """What the unit is, which test gave each p and interval (and what variance it covers), the Holm family."""
    several = comparison.seeds is not None and len(comparison.seeds) > 1
    method = (f"seeds then questions resampled ({n_boot} resamples, seed {seed}), interval and p from the same "
              f"draws: it covers both the training seed's variance and which questions were asked"
              if several else "exact McNemar on the discordant questions and its matching exact interval: it "
              "covers which questions were asked, not the training seed's variance")
    return (f"Unit: {_unit(comparison)}. Per task: {method}; the interval excludes 0 exactly when p < {ALPHA}. "
            f"Avg: bootstrap over every task, questions resampled within each (seeds first, when several). n = paired "
            f"observations. {_family(tasks, dataset_of)} "
            f"* = Holm p < {ALPHA} (Avg: its own p < {ALPHA}); n.s. = not distinguishable.")


def _family(tasks: list[str], dataset_of: dict[str, str]) -> str:
    count = len({dataset_of.get(task, task) for task in tasks})
    formats = (f" (the {len(tasks)} tasks are {count} datasets: a dataset's prompt formats are one member, its p the "
               f"largest of theirs, an intersection-union test)" if count < len(tasks) else "")
    return f"Holm: over the {count} dataset(s) compared{formats}."


def _unit(comparison: Comparison) -> str:
    """What one paired observation is (n counts them), for the footnote."""
    seeds = comparison.seeds
    if seeds is None:
        return "the question (both runs answered the same ones)"
    if len(seeds) == 1:
        return f"the question (seed {seeds[0]} of A against seed {seeds[0]} of B)"
    return (f"the (seed, question) pair: seed s of A against seed s of B on the same question, seeds "
            f"{', '.join(map(str, seeds))}; n = seeds x questions")
