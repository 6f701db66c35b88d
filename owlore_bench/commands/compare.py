"""`owlore-bench compare RUN_A RUN_B`: do two evaluated runs, or two labels, differ? Per task and for the Avg
column: the difference in points with its 95% paired bootstrap interval, the exact McNemar p-value and the
Holm-adjusted one, all from the per-question outcomes each evaluation stores in samples/
(owlore_bench/evaluation/samples.py).

RUN_A and RUN_B are two run folders (<experiment>/<label>/seed-<s>, holding eval.json and samples/), or two label
folders (<experiment>/<label>, holding seed-<s>/ runs), or one experiment folder with --labels A,B. Labels pair
seed s of A with seed s of B (the seeds both have an ok run of; a seed only one has is named and left out) and
every test runs over the pooled (seed, question) pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from owlore_bench.errors import UserError
from owlore_bench.evaluation.samples import SAMPLES_DIR, paired_outcomes, require_samples, stored_tasks
from owlore_bench.reporting import statistics
from owlore_bench.reporting.loading import label_seed_runs

EXAMPLES = """examples:
  owlore-bench compare runs/quickstart/owlore/seed-0 runs/quickstart/lora/seed-0
  owlore-bench compare runs/sweep/owlore runs/sweep/lora       # two labels, seed s against seed s
  owlore-bench compare runs/sweep --labels owlore,lora         # the same, by label name
  owlore-bench compare RUN_A RUN_B --tasks bb_navigate,bb_winowhy --metric acc_norm
  owlore-bench eval --run RUN --tasks arc_easy_choices --out RUN   # a run evaluated before samples/ existed
"""
ALPHA = 0.05  # the '*' marker: Holm-adjusted p below this
HEADER = ("task", "n", "A % [95% Wilson]", "B % [95% Wilson]", "Δ pts", "95% paired CI", "McNemar p", "Holm p", "")
KINDS = ("a run folder (eval.json and samples/, e.g. runs/quickstart/lora/seed-0), a label folder (seed-<s>/ "
         "runs, e.g. runs/quickstart/lora) or, with --labels A,B, an experiment folder (<label>/seed-<s>/)")


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def add_parser(subparsers, help_text: str) -> None:
    parser = subparsers.add_parser("compare", help=help_text,
                                   description="Compare two evaluated run folders (or two labels, seed by seed) "
                                               "question by question: difference in points, paired bootstrap "
                                               "interval, exact McNemar and Holm p.",
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
                        help=f"bootstrap resamples (default {statistics.N_BOOT})")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.set_defaults(run=run)


# ---------------------------------------------------------------- what is compared
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
    seeds = [seed for seed in runs_a if seed in runs_b]
    if not seeds:
        raise UserError(f"labels {name_a} and {name_b} share no seed (A has {_seed_list(runs_a)}, B has "
                        f"{_seed_list(runs_b)}); seeds pair seed s with seed s: run both with the same seeds")
    header = [f"A: {name_a} ({folder_a})", f"B: {name_b} ({folder_b})",
              f"seeds paired: {_seed_list(seeds)} (both labels have an ok run of each)"]
    for seed in sorted(set(runs_a) ^ set(runs_b)):
        side = "A" if seed in runs_a else "B"
        header.append(f"seed {seed}: only {side} ({name_a if side == 'A' else name_b}) has an ok run; left out")
    return Comparison(header, [(runs_a[seed], runs_b[seed]) for seed in seeds], seeds)


def _seed_list(seeds) -> str:
    return ", ".join(str(seed) for seed in seeds)


def _tasks(pairs: list[tuple[Path, Path]], tasks: list[str] | None) -> list[str]:
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


def pooled_outcomes(pairs: list[tuple[Path, Path]], task: str, metric: str) -> tuple[list[int], list[int]]:
    """A's and B's 0/1 outcomes of one task over every (A run, B run) pair, concatenated pair after pair: one
    (seed, question) pair per position, so the paired tests run over the pooled pairs."""
    pooled_a: list[int] = []
    pooled_b: list[int] = []
    for folder_a, folder_b in pairs:
        a, b = paired_outcomes(folder_a, folder_b, task, metric)
        pooled_a += a
        pooled_b += b
    return pooled_a, pooled_b


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
    comparison = resolve(args.run_a, args.run_b, args.labels)
    pairs = {task: pooled_outcomes(comparison.pairs, task, args.metric)
             for task in _tasks(comparison.pairs, args.tasks)}
    print("\n".join([*comparison.header, f"metric: {args.metric}, Δ = A - B in points"]))
    print(format_lines(comparison_lines(pairs, args.n_boot, args.seed)))
    print(f"Unit: {_unit(comparison)}. 95% intervals: paired bootstrap over these units ({args.n_boot} resamples, "
          f"seed {args.seed}; Avg: resampled within each task). McNemar: exact, two-sided, on their discordant "
          f"pairs. Holm: over the {len(pairs)} task(s). * = Holm p < {ALPHA} (Avg: interval excludes 0); n.s. = not "
          f"significant.")
    return 0


def _unit(comparison: Comparison) -> str:
    """What one paired observation is (n counts them), for the footnote."""
    seeds = comparison.seeds
    if seeds is None:
        return "the question (both runs answered the same ones)"
    if len(seeds) == 1:
        return f"the question (seed {seeds[0]} of A against seed {seeds[0]} of B)"
    return (f"the (seed, question) pair, pooled over seeds {_seed_list(seeds)}: seed s of A against seed s of B on "
            f"the same question, n = {len(seeds)} seeds x questions (a question counts once per seed, so its "
            f"pairs are not independent)")
