"""`owlore-bench run CONFIG.yaml`: the whole comparison — train every method × seed, evaluate, tabulate, plot."""

from __future__ import annotations

from pathlib import Path

from owlore_bench.experiment import load_experiment, parse_only, plan
from owlore_bench.runner import claim_out_dir, dry_run_plan, judge_mtbench, run_units

EXAMPLES = """examples:
  owlore-bench run configs/quickstart.yaml                       # -> runs/quickstart/ (resumable)
  owlore-bench run configs/quickstart.yaml --out runs/qs2        # another output folder
  owlore-bench run configs/paper/commonsense_llama2_7b.yaml --dry-run
  owlore-bench run my.yaml --only method=owlore,seed=1           # one unit, e.g. from a scheduler
"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("run", help="run an experiment config: train, evaluate, tabulate, plot (resumable)",
                                   description="Train every method x seed of an experiment config, evaluate each "
                                               "with lm-eval, then write the table and plots. Rerunning resumes.",
                                   epilog=EXAMPLES)
    parser.add_argument("config", help="experiment YAML, e.g. configs/quickstart.yaml")
    parser.add_argument("--out", "--output_path", dest="out",
                        help="output folder (default: the config's `out`, else runs/<name>)")
    parser.add_argument("--only", help="run just these units, e.g. method=owlore,seed=1 (for external schedulers)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and estimated memory; train nothing")
    parser.add_argument("--force", action="store_true",
                        help="reuse an output folder that holds another config: runs whose config still matches "
                             "are kept, the others are rerun")
    parser.add_argument("--no-plots", action="store_true", help="write tables only")
    parser.set_defaults(run=run)


def run(args) -> int:
    experiment = load_experiment(args.config, out=args.out)
    units = plan(experiment, parse_only(args.only))  # validates every method entry before anything runs
    if args.dry_run:
        print_plan(experiment, units)
        return 0
    from owlore_bench.evaluate import check_tasks
    from owlore_bench.registry import build_method
    from owlore_bench.step_in_backward import check_supported
    from owlore_bench.tracking import check_available

    if experiment.eval.tasks:
        check_tasks(experiment.eval.tasks)
    if experiment.mt_bench is not None:
        check_mtbench(experiment)
    for unit in units:
        if unit.run is not None:
            check_available(unit.run.train.report_to)
            check_supported(build_method(unit.run.method, unit.run.method_config), unit.run.train)
    claim_out_dir(experiment, force=args.force)
    summaries = run_units(experiment, units)
    if experiment.mt_bench is not None:
        judge_mtbench(experiment, units)
    from owlore_bench.commands.report import make_report
    from owlore_bench.report import render_markdown

    table, paths = make_report([experiment.out_dir], experiment.out_dir, plots=not args.no_plots)
    print(render_markdown(table))
    print(f"results and {len(paths)} table/plot files in {experiment.out_dir}")
    if experiment.reference:
        from owlore_bench.compare import reference_comparison

        print(reference_comparison(table, Path(experiment.reference)))
    failed = [f"{s['label']} seed {s.get('seed', 0)}: {s['status']}" for s in summaries if s["status"] != "ok"]
    if failed:
        print("not ok: " + "; ".join(failed))
    return 0 if not failed else 1


def print_plan(experiment, units) -> None:
    rows = dry_run_plan(experiment, units)
    print(f"experiment '{experiment.name}': {len(rows)} runs -> {experiment.out_dir}")
    evaluation = (f"eval {', '.join(experiment.eval.tasks)} (shots {experiment.eval.num_fewshot}, limit "
                  f"{experiment.eval.limit})" if experiment.eval.tasks else "no lm-eval tasks")
    print(f"model {experiment.model}; data {experiment.data.path}; {evaluation}")
    if experiment.mt_bench is not None:
        bench = experiment.mt_bench
        print(f"mt_bench: {bench.limit or 80} questions x 2 turns, max {bench.max_new_tokens} new tokens a turn, "
              f"judge {bench.judge} (max {bench.judge_max_tokens} tokens)")
    for row in rows:
        if "estimated_total_bytes" in row:
            memory = f"est. {row['estimated_total_bytes'] / 2**30:6.2f} GiB ({row['estimate_dtype']}), " \
                     f"{row['trainable_params']:,} trainable"
        else:
            memory = row.get("estimate_error", "evaluation only")
        done = "done" if row["complete"] else "todo"
        print(f"  {row['label']:<20} seed {row['seed']:<3} {done}  {memory}")



def check_mtbench(experiment) -> None:
    """Before anything trains: the MT-Bench data is there, and an openai: judge has its API key (an hf: judge is
    loaded only when the answers are ready, so it does not sit in memory during training)."""
    from owlore_bench.mtbench.judges import parse_spec
    from owlore_bench.mtbench.pipeline import cached_judge
    from owlore_bench.mtbench.questions import load_judge_prompts, load_questions

    load_questions()
    load_judge_prompts()
    if parse_spec(experiment.mt_bench.judge)[0] == "openai":
        cached_judge(experiment.mt_bench.judge, experiment.mt_bench.judge_max_tokens)
