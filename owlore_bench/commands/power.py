"""`owlore-bench power`: how many questions a paired comparison of two runs needs (McNemar design, 80 % power at
alpha 0.05; Connor 1987, see owlore_bench/reporting/power.py), with --n the smallest difference n detects, and
with --pilot RUN_A RUN_B the discordance two real runs have and the questions it implies (reporting/pilot.py)."""

from __future__ import annotations

from owlore_bench.errors import UserError
from owlore_bench.reporting import power

EXAMPLES = """examples:
  owlore-bench power --acc 0.6 --delta 2                     # questions to detect 60 % vs 62 %
  owlore-bench power --acc 0.6 --delta 2 --discordance 0.2   # runs that disagree on 20 % of the questions
  owlore-bench power --n 100 --discordance 0.2               # what 100 questions a task can tell apart
  owlore-bench power --pilot runs/pilot/lora runs/pilot/base # measure the discordance of two real runs
  owlore-bench power --pilot RUN_A RUN_B --delta 5           # ... and the questions to detect 5 points
"""


def add_parser(subparsers, help_text: str) -> None:
    parser = subparsers.add_parser("power", help=help_text,
                                   description="Sample size for 80 % power at alpha 0.05 of the paired (McNemar) "
                                               "comparison of two runs on the same questions, or with --n the "
                                               "smallest detectable difference, or with --pilot the discordance "
                                               "two evaluated runs have.", epilog=EXAMPLES)
    parser.add_argument("--acc", type=float, help="the reference run's accuracy as a proportion, e.g. 0.6")
    parser.add_argument("--delta", type=float, help="the difference to detect, in points (2 = 60 %% vs 62 %%)")
    parser.add_argument("--discordance", type=float,
                        help="share of questions exactly one run gets right, e.g. 0.2 (measure it with --pilot; "
                             "default: both runs that err independently at --acc, an assumption, and the most "
                             "these accuracies allow, the true upper bound)")
    parser.add_argument("--n", type=int, help="questions per task: print the smallest detectable difference")
    parser.add_argument("--pilot", nargs=2, metavar=("RUN_A", "RUN_B"),
                        help="two evaluated run folders (or two label folders, seeds paired) whose per-question "
                             "outcomes give the measured discordance per task")
    parser.add_argument("--tasks", type=lambda text: [t.strip() for t in text.split(",") if t.strip()],
                        help="with --pilot: comma-separated tasks (default: every task both have outcomes for)")
    parser.add_argument("--metric", default="acc", help="with --pilot: per-question metric (default acc)")
    parser.add_argument("--alpha", type=float, default=power.ALPHA, help=f"two-sided level (default {power.ALPHA})")
    parser.add_argument("--power", dest="target_power", type=float, default=power.POWER,
                        help=f"wanted power (default {power.POWER})")
    parser.set_defaults(run=run)


def _check_args(args) -> None:
    for flag, value, example in (("--acc", args.acc, 0.6), ("--discordance", args.discordance, 0.2),
                                 ("--alpha", args.alpha, 0.05), ("--power", args.target_power, 0.8)):
        if value is not None and not 0 < value < 1:
            raise UserError(f"{flag}: a proportion between 0 and 1 (got {value}); e.g. {flag} {example}")
    if args.pilot is not None:
        if args.delta is not None and not 0 < abs(args.delta) < 100:
            raise UserError(f"--delta: points between 0 and 100 (got {args.delta}); e.g. --delta 5")
        return
    if args.n is not None:
        if args.n < 1:
            raise UserError(f"--n: a number of questions, at least 1 (got {args.n})")
        if args.acc is None and args.discordance is None:
            raise UserError("--n: also give --discordance D (e.g. 0.2) or --acc A (independent errors at A)")
        return
    if args.acc is None or args.delta is None:
        raise UserError("--acc and --delta: both needed (e.g. --acc 0.6 --delta 2), or --n N for the smallest "
                        "detectable difference, or --pilot RUN_A RUN_B to measure two runs")
    if not 0 < abs(args.delta) < 100 or not 0 < args.acc + args.delta / 100 < 1:
        raise UserError(f"--delta: points such that --acc + delta/100 stays between 0 and 1 (got --acc {args.acc}, "
                        f"--delta {args.delta})")


def _pilot(args) -> int:
    from owlore_bench.reporting.families import datasets
    from owlore_bench.reporting.pairs import question_keys, resolve
    from owlore_bench.reporting.pilot import measure, pilot_lines

    comparison = resolve(args.pilot[0], args.pilot[1], None)
    measured = measure(comparison, args.tasks, args.metric)
    count = len(set(datasets(question_keys(comparison, [m.task for m in measured[:-1]])).values()))
    print("\n".join([*comparison.header, f"metric: {args.metric}, Δ = A - B", *pilot_lines(
        measured, count, None if args.delta is None else args.delta / 100, args.alpha, args.target_power)]))
    return 0


def run(args) -> int:
    _check_args(args)
    if args.pilot is not None:
        return _pilot(args)
    setting = f"{100 * args.target_power:g} % power, two-sided alpha {args.alpha:g}, paired McNemar (Connor 1987)"
    if args.n is not None:
        smallest = power.smallest_detectable_difference(args.n, args.discordance, args.acc, args.alpha,
                                                        args.target_power)
        assumed = (f"discordance {args.discordance:g}" if args.discordance is not None
                   else f"independent errors at {100 * args.acc:g} %, an assumption, not a bound")
        if smallest != smallest:  # NaN
            print(f"n = {args.n}: no difference reaches {setting} with {assumed}")
        else:
            print(f"n = {args.n} questions detect a difference of {100 * smallest:.1f} points ({setting}; {assumed})")
        return 0
    delta = args.delta / 100
    if args.discordance is not None:
        settings = [(args.discordance, f"discordance {args.discordance:g}")]
    else:
        independent, most = power.independent_discordance(args.acc, delta), power.max_discordance(args.acc, delta)
        settings = [(independent, f"discordance {independent:.3f}: independent errors at {100 * args.acc:g} %, an "
                                  f"assumption, not a bound; measure yours with --pilot RUN_A RUN_B"),
                    (most, f"discordance {most:.3f}: the most these accuracies allow, the upper bound")]
    for psi, assumed in settings:
        if abs(delta) >= psi:
            raise UserError(f"--discordance: must exceed |delta| = {abs(delta):g} (every changed answer is a "
                            f"discordant question; got {psi:g})")
        n = power.mcnemar_sample_size(delta, psi, args.alpha, args.target_power)
        print(f"{n} questions detect {args.delta:+g} points at accuracy {100 * args.acc:g} % ({setting}; {assumed})")
    return 0


TYPICAL_DISCORDANCE = 0.2  # shown beside the chance setting in `run --dry-run`; measure yours with --pilot


def dry_run_lines(tasks: list[str], limit: int | None, task_limits: dict[str, int] | None = None) -> list[str]:
    """`run --dry-run`'s lines: per configured eval task and its n (eval.limit, or its eval.task_limits entry, which
    wins for that task), the smallest difference a paired comparison of two rows detects (80 % power, alpha 0.05)
    at discordance 0.5 (two runs at 50 % that err independently; not a bound: runs can disagree more) and at a
    typical 0.2. Without a limit n is the task's whole test split, known only once it is evaluated."""
    if not tasks:
        return []
    task_limits = task_limits or {}
    if limit is None and not task_limits:
        return [f"detectable differences: n = each task's whole test split (no eval.limit); for n questions: "
                f"owlore-bench power --n N --discordance {TYPICAL_DISCORDANCE}"]
    sized = [(task, limit) for task in tasks if task not in task_limits] + list(task_limits.items())
    lines = ["smallest difference (points) two rows can be told apart by, 80 % power, alpha 0.05, paired McNemar, "
             f"discordance {power.CHANCE_DISCORDANCE} (independent errors at 50 %; runs can disagree more: measure "
             f"with owlore-bench power --pilot RUN_A RUN_B):"]
    for task, n in sized:
        if n is None:
            lines.append(f"  {task:<24} n whole test split")
            continue
        chance = power.smallest_detectable_difference(n, power.CHANCE_DISCORDANCE)
        typical = power.smallest_detectable_difference(n, TYPICAL_DISCORDANCE)
        text = "none" if chance != chance else f"{100 * chance:.1f}"
        text += "" if typical != typical else f" ({100 * typical:.1f} at discordance {TYPICAL_DISCORDANCE})"
        label = f"{task} (others)" if task_limits and task in tasks else task
        lines.append(f"  {label:<24} n {n:<6} {text}")
    return lines
