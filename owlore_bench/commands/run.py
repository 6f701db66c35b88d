"""`owlore-bench run CONFIG.yaml`: the whole comparison — train every method × seed, evaluate, tabulate, plot."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from owlore_bench.experiment import check_out_dir_is_usable, load_experiment, parse_only, plan
from owlore_bench.launch.options import add_launcher_arguments, collect_command, make_launcher
from owlore_bench.launch.records import submitted_units
from owlore_bench.launch.torchrun import add_nproc_argument, add_parallel_argument, check_nproc, relaunch
from owlore_bench.results import read_json
from owlore_bench.runner import claim_out_dir, dry_run_plan, judge_mtbench, unit_is_complete
from owlore_bench.train import distributed

EXAMPLES = """examples:
  owlore-bench run configs/quickstart.yaml                       # -> runs/quickstart/ (resumable)
  owlore-bench run configs/quickstart.yaml --out runs/qs2        # another output folder
  owlore-bench run configs/quickstart.yaml --model gemma3-270m   # the same comparison on another model
  owlore-bench run configs/paper/commonsense_llama2_7b.yaml --dry-run
  owlore-bench run my.yaml --only method=owlore,seed=1           # one unit, e.g. from a scheduler
  owlore-bench run my.yaml --nproc 2                             # each unit data parallel on 2 processes
  owlore-bench run my.yaml --nproc 8 --parallel fsdp             # each unit sharded over 8 GPUs (FSDP2)
  owlore-bench run my.yaml --launcher submitit --partition gpu --gpus-per-unit 1 --timeout-min 240
  owlore-bench run my.yaml                                       # later: collect the finished jobs' units
"""


def add_parser(subparsers, help_text: str) -> None:
    parser = subparsers.add_parser("run", help=help_text,
                                   description="Train every method x seed of an experiment config, evaluate each "
                                               "with lm-eval, then write the table and plots. Rerunning resumes.",
                                   epilog=EXAMPLES)
    parser.add_argument("config", help="experiment YAML, e.g. configs/quickstart.yaml")
    parser.add_argument("--out", "--output_path", dest="out",
                        help="output folder (default: the config's `out`, else runs/<name>)")
    parser.add_argument("--model", help="run the config on this model instead of its own (a built-in such as "
                                         "gemma3-270m, a folder, a .gguf file or an HF id); default output folder "
                                         "<config's folder>-<model>, and no comparison with the config's reference")
    parser.add_argument("--only", help="run just these units, e.g. method=owlore,seed=1 (for external schedulers)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and estimated memory; train nothing")
    parser.add_argument("--force", action="store_true",
                        help="reuse an output folder that holds another config: runs whose config still matches "
                             "are kept, the others are rerun")
    parser.add_argument("--no-plots", action="store_true", help="write tables only")
    add_nproc_argument(parser)
    add_parallel_argument(parser)
    add_launcher_arguments(parser)
    parser.set_defaults(run=run)


def on_model(experiment, model: str | None, out: str | None):
    """The experiment with `model` in place of its own; its reference results (another model's) are not compared,
    and without --out it writes beside its usual folder, to <folder>-<model name>."""
    if model is None or model == experiment.model:
        return experiment
    folder = experiment.out_dir if out is not None else Path(f"{experiment.out_dir}-{model_label(model)}")
    moved = experiment.model_copy(update={"model": model, "reference": None, "architecture": None,
                                          "out": str(folder)})
    check_out_dir_is_usable(moved)
    return moved


def model_label(model: str) -> str:
    """A folder-safe short name of a model: `gemma3-270m`, the last part of a path or HF id, a .gguf file's stem."""
    name = Path(model.rstrip("/")).name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name.removesuffix(".gguf")) or "model"


def run(args) -> int:
    experiment = on_model(load_experiment(args.config, out=args.out), args.model, args.out)
    if args.parallel:  # every unit (a method entry's own train.parallel still wins)
        experiment.train.parallel = args.parallel
    units = plan(experiment, parse_only(args.only))  # validates every method entry before anything runs
    if args.dry_run:
        print_plan(experiment, units, args.nproc or 1)
        return 0
    collect = collect_command(args.config, args.out) + (f" --model {shlex.quote(args.model)}" if args.model else "")
    launcher = make_launcher(args, collect)  # flag errors before any check
    if args.nproc is not None:
        check_nproc(args.nproc, experiment.train.device)
    # processes that will train each unit: --nproc, a unit job's GPUs, or the torchrun this command runs under
    processes = args.nproc or launcher.processes_per_unit or int(os.environ.get("WORLD_SIZE", "1"))
    check_before_running(experiment, units, processes)
    if args.nproc is not None and args.nproc > 1:
        check_data(units, args.nproc)  # one line here, not one per rank
        return relaunch(args.nproc, args.command_line)
    distributed.init_from_env(experiment.train.device)
    try:
        return run_experiment(args, experiment, units, launcher)
    finally:
        distributed.shutdown()


def check_before_running(experiment, units, processes: int) -> None:
    """Everything that can fail in one line before a unit trains: tasks, MT-Bench data, trackers, methods."""
    from owlore_bench.evaluation.harness import check_tasks
    from owlore_bench.registry import build_method
    from owlore_bench.train.step_in_backward import check_supported
    from owlore_bench.train.tracking import check_available

    if experiment.eval.tasks:
        check_tasks(experiment.eval.tasks, experiment.eval.task_limits)
    if experiment.mt_bench is not None:
        check_mtbench(experiment)
    for unit in units:
        if unit.run is not None:
            check_available(unit.run.train.report_to)
            check_supported(build_method(unit.run.method, unit.run.method_config), unit.run.train, processes)


def check_data(units, processes: int) -> None:
    """Read and tokenize each distinct data setting of the units and derive their steps (what every rank would
    do first), so a data error stops the command before torchrun starts."""
    from owlore_bench.train.data_plan import steps_to_run, tokenization_key, tokenize_data

    tokenized = {}
    for unit in units:
        if unit.run is not None:
            key = tokenization_key(unit.run)
            tokenized[key] = tokenized.get(key) or tokenize_data(unit.run)
            steps_to_run(tokenized[key], unit.run.train, processes)


def run_experiment(args, experiment, units, launcher) -> int:
    """Run (or submit) the units no job holds, then tabulate every finished one. Under torchrun every rank runs
    the units; rank 0 alone writes, judges, tabulates and prints."""
    main = distributed.is_main()
    if main:
        claim_out_dir(experiment, force=args.force)
    distributed.barrier()
    incomplete = [unit for unit in units if not unit_is_complete(unit, experiment)]
    jobs = distributed.from_main(submitted_units(incomplete) if main else None)  # one decision for all ranks
    held = {(job.unit.label, job.unit.seed) for job in jobs
            if job.in_flight or not launcher.takes_over_ended_jobs}
    finished_here = launcher.launch(experiment, [u for u in incomplete if (u.label, u.seed) not in held])
    if not main:
        return 0
    if not finished_here:
        return 0  # submitted: a later `owlore-bench run` collects
    return tabulate(args, experiment, units, [job for job in jobs if (job.unit.label, job.unit.seed) in held])


def tabulate(args, experiment, units, held_jobs) -> int:
    """Judge (MT-Bench), write and print the table of every finished unit; list what is missing and why.
    Exit code 0 only when every unit finished with status ok."""
    done = [unit for unit in units if unit_is_complete(unit, experiment)]
    if experiment.mt_bench is not None and done:
        judge_mtbench(experiment, done)
    if done:
        from owlore_bench.commands.report import make_report
        from owlore_bench.reporting.render import render_markdown

        table, paths = make_report([experiment.out_dir], experiment.out_dir, plots=not args.no_plots)
        print(render_markdown(table))
        print(f"results and {len(paths)} table/plot files in {experiment.out_dir}")
        if experiment.reference:
            from owlore_bench.reporting.reference import reference_comparison

            print(reference_comparison(table, Path(experiment.reference)))
    summaries = [{"label": unit.label, "seed": unit.seed, **read_json(unit.folder / "summary.json")} for unit in done]
    failed = [f"{s['label']} seed {s['seed']}: {s['status']}" for s in summaries if s["status"] != "ok"]
    if failed:
        print("not ok: " + "; ".join(failed))
    waiting = [job for job in held_jobs if job.in_flight]
    ended = [job for job in held_jobs if not job.in_flight]
    if waiting:
        print(f"still held by {len(waiting)} cluster job(s); rerun this command when they end:")
        print("\n".join(f"  {job.describe()}" for job in waiting))
    if ended:
        print(f"{len(ended)} cluster job(s) ended without a result; resubmit with --launcher submitit (it resumes "
              f"from the checkpoint) or run them here with --launcher local:")
        print("\n".join(f"  {job.describe()}" for job in ended))
    return 0 if not (failed or held_jobs) and len(done) == len(units) else 1


def print_plan(experiment, units, world_size: int = 1) -> None:
    rows = dry_run_plan(experiment, units, world_size)
    print(f"experiment '{experiment.name}': {len(rows)} runs -> {experiment.out_dir}")
    evaluation = (f"eval {', '.join(experiment.eval.tasks)} (shots {experiment.eval.num_fewshot}, limit "
                  f"{experiment.eval.limit})" if experiment.eval.tasks else "no lm-eval tasks")
    print(f"model {experiment.model}; data {experiment.data.path}; {evaluation}")
    from owlore_bench.commands.power import dry_run_lines

    evaluated = experiment.eval
    for line in dry_run_lines(evaluated.tasks, evaluated.limit, evaluated.task_limits):  # what it can tell apart
        print(line)
    if experiment.mt_bench is not None:
        bench = experiment.mt_bench
        print(f"mt_bench: {bench.limit or 80} questions x 2 turns, max {bench.max_new_tokens} new tokens a turn, "
              f"judge {bench.judge} (max {bench.judge_max_tokens} tokens)")
    print_data_plans(rows)
    for row in rows:
        print(f"  {row['label']:<20} seed {row['seed']:<3} {'done' if row['complete'] else 'todo'}  {_plan_cell(row)}")


def print_data_plans(rows) -> None:
    """Each distinct data plan once: as is when every trained run shares it, else under the runs it is for."""
    plans: dict[tuple[str, ...], list[str]] = {}
    for row in rows:
        if "data_plan" in row:
            plans.setdefault(tuple(row["data_plan"]), []).append(f"{row['label']} seed {row['seed']}")
    for lines, labels in plans.items():
        if len(plans) > 1:
            print(f"data plan of {', '.join(labels)}:")
        print("\n".join(("  " if len(plans) > 1 else "") + line for line in lines))


def _plan_cell(row) -> str:
    """A run's steps and estimated memory (GiB); with kept optimizer state also the total at the end of the run."""
    if "data_plan" not in row:
        return "evaluation only"
    steps = "steps " + (f"{row['steps']:,}" if row["steps"] is not None else "?").ljust(6)
    if "estimated_total_bytes" not in row:
        return f"{steps} {row['estimate_error']}"
    cell = (f"{steps} est. {row['estimated_total_bytes'] / 2**30:6.2f} GiB ({row['estimate_dtype']}), "
            f"{row['trainable_params']:,} trainable")
    if "estimated_total_state_kept_bytes" in row:
        kept = row["estimated_total_state_kept_bytes"] / 2**30
        cell += (f"; {kept:.2f} GiB at the end (optimizer state kept)" if row["steps"] is not None
                 else f"; at most {kept:.2f} GiB at the end (optimizer state kept, every layer: steps unknown)")
    return cell


def check_mtbench(experiment) -> None:
    """Before anything trains: the MT-Bench data is there, and an openai: judge has its API key (an hf: judge is
    loaded only when the answers are ready, so it does not sit in memory during training); the pairwise modes
    have their judge prompts, and pairwise-baseline a baseline that is one of the experiment's rows."""
    from owlore_bench.errors import UserError, did_you_mean
    from owlore_bench.mtbench.judges import parse_spec
    from owlore_bench.mtbench.pairwise import check_pair_prompts
    from owlore_bench.mtbench.pipeline import cached_judge
    from owlore_bench.mtbench.questions import load_judge_prompts, load_questions

    bench = experiment.mt_bench
    load_questions()
    prompts = load_judge_prompts()
    if bench.mode != "single":
        check_pair_prompts(prompts)
    labels = list(dict.fromkeys(unit.label for unit in plan(experiment)))  # every row, not only --only's
    if bench.mode == "pairwise-baseline" and bench.baseline not in labels:
        raise UserError(f"mt_bench.baseline: {bench.baseline!r} is not a row of this experiment "
                        f"({', '.join(labels)}){did_you_mean(bench.baseline, labels)}; set it to the row the others "
                        f"play")
    if parse_spec(bench.judge)[0] == "openai":
        cached_judge(bench.judge, bench.judge_max_tokens)
