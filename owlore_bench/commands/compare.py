"""`owlore-bench compare RUN_A RUN_B`: do two evaluated runs differ? Per task and for the Avg column: the
difference in points with its 95% paired bootstrap interval, the exact McNemar p-value and the Holm-adjusted one,
all from the per-question outcomes each evaluation stores in samples/ (owlore_bench/evaluation/samples.py)."""

from __future__ import annotations

from owlore_bench.errors import UserError
from owlore_bench.evaluation.samples import paired_outcomes, require_samples, stored_tasks
from owlore_bench.reporting import statistics

EXAMPLES = """examples:
  owlore-bench compare runs/quickstart/owlore/seed-0 runs/quickstart/lora/seed-0
  owlore-bench compare RUN_A RUN_B --tasks bb_navigate,bb_winowhy --metric acc_norm
  owlore-bench eval --run RUN --tasks arc_easy_choices --out RUN   # a run evaluated before samples/ existed
"""
ALPHA = 0.05  # the '*' marker: Holm-adjusted p below this
HEADER = ("task", "n", "A % [95% Wilson]", "B % [95% Wilson]", "Δ pts", "95% paired CI", "McNemar p", "Holm p", "")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("compare", help="paired per-question test of two evaluated runs (Δ, CI, p)",
                                   description="Compare two evaluated run folders question by question: difference "
                                               "in points, paired bootstrap interval, exact McNemar and Holm p.",
                                   epilog=EXAMPLES)
    parser.add_argument("run_a", metavar="RUN_A", help="run folder holding eval.json and samples/ "
                                                       "(e.g. runs/quickstart/owlore/seed-0)")
    parser.add_argument("run_b", metavar="RUN_B", help="the run folder to compare against (Δ = A - B)")
    parser.add_argument("--tasks", type=lambda text: [t.strip() for t in text.split(",") if t.strip()],
                        help="comma-separated tasks (default: every task both runs have outcomes for)")
    parser.add_argument("--metric", default="acc", help="per-question metric: acc (default) or acc_norm")
    parser.add_argument("--n-boot", dest="n_boot", type=int, default=statistics.N_BOOT,
                        help=f"bootstrap resamples (default {statistics.N_BOOT})")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.set_defaults(run=run)


def _tasks(args) -> list[str]:
    for folder in (args.run_a, args.run_b):
        require_samples(folder, args.tasks)
    if args.tasks:
        return args.tasks
    in_b = set(stored_tasks(args.run_b))
    tasks = [task for task in stored_tasks(args.run_a) if task in in_b]
    if not tasks:
        raise UserError(f"{args.run_a} and {args.run_b}: no task has per-question outcomes in both; name them "
                        f"with --tasks, or evaluate both on the same tasks (owlore-bench eval --run RUN --out RUN)")
    return tasks


def _accuracy(outcomes: list[int]) -> str:
    low, high = statistics.wilson_interval(sum(outcomes), len(outcomes))
    return f"{100 * sum(outcomes) / len(outcomes):.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def _p(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def comparison_lines(pairs: dict[str, tuple[list[int], list[int]]], n_boot: int = statistics.N_BOOT,
                     seed: int = 0) -> list[tuple[str, ...]]:
    """The table's cells: one line per task, then the Avg line (stratified bootstrap; no single paired test)."""
    differences = {task: statistics.paired_difference(a, b, n_boot, seed) for task, (a, b) in pairs.items()}
    adjusted = statistics.holm([difference.p_value for difference in differences.values()])
    lines = []
    for (task, (a, b)), difference, holm_p in zip(pairs.items(), differences.values(), adjusted):
        lines.append((task, str(difference.n), _accuracy(a), _accuracy(b), f"{difference.points:+.1f}",
                      f"[{difference.low:+.1f}, {difference.high:+.1f}]", _p(difference.p_value), _p(holm_p),
                      "*" if holm_p < ALPHA else "n.s."))
    average = statistics.stratified_average_difference([a for a, _ in pairs.values()], [b for _, b in pairs.values()],
                                            n_boot, seed)
    mean_a, mean_b = (sum(100 * sum(x[k]) / len(x[k]) for x in pairs.values()) / len(pairs) for k in (0, 1))
    excludes_zero = average.low > 0 or average.high < 0
    lines.append((f"Avg ({len(pairs)} tasks)", str(average.n), f"{mean_a:.1f}", f"{mean_b:.1f}",
                  f"{average.points:+.1f}", f"[{average.low:+.1f}, {average.high:+.1f}]", "—", "—",
                  "*" if excludes_zero else "n.s."))
    return lines


def format_lines(lines: list[tuple[str, ...]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(HEADER, *lines)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
                     for line in [HEADER, *lines])


def run(args) -> int:
    if args.n_boot < 1:
        raise UserError(f"--n-boot: must be >= 1 (got {args.n_boot})")
    pairs = {task: paired_outcomes(args.run_a, args.run_b, task, args.metric) for task in _tasks(args)}
    print(f"A: {args.run_a}\nB: {args.run_b}\nmetric: {args.metric}, Δ = A - B in points")
    print(format_lines(comparison_lines(pairs, args.n_boot, args.seed)))
    print(f"95% intervals: paired bootstrap over questions ({args.n_boot} resamples, seed {args.seed}; Avg: "
          f"resampled within each task). McNemar: exact, two-sided. Holm: over the {len(pairs)} task(s). "
          f"* = Holm p < {ALPHA} (Avg: interval excludes 0); n.s. = not significant.")
    return 0
