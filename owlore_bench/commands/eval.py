"""`owlore-bench eval`: score a model (or a trained run) on lm-eval tasks, print a table, write the rows."""

from __future__ import annotations

import time
from pathlib import Path

from owlore_bench.errors import UserError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="score a model or a trained run with lm-eval tasks")
    parser.add_argument("--model", default="smollm2-135m",
                        help="HF id or path, 'smollm2-135m' (default) or 'tiny-llama'; ignored with --run")
    parser.add_argument("--run", dest="run_dir", help="a trained run folder (config.json + model/): evaluates its weights/adapter")
    parser.add_argument("--tasks", default="bigbench_default",
                        help="comma-separated task names: <task>_choices / <task>_labels (commonsense), "
                             "mmlu_local, bigbench_default, bb_<name>, or any lm-eval task (default bigbench_default)")
    parser.add_argument("--num-fewshot", type=int, help="examples in the prompt (default: each task's own)")
    parser.add_argument("--limit", type=int, help="score at most this many documents per task")
    parser.add_argument("--batch-size", type=int, default=8, help="sequences per forward pass (default 8)")
    parser.add_argument("--dtype", choices=["auto", "bf16", "fp32"], default="auto")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--out", help="write the rows to this JSON file")
    parser.set_defaults(run=run)


def parse_task_list(text: str) -> list[str]:
    tasks = [name.strip() for name in text.split(",") if name.strip()]
    if not tasks:
        raise UserError("--tasks: empty; name at least one task, e.g. --tasks arc_easy_choices,bigbench_default")
    return tasks


def _check_numbers(args) -> None:
    for flag, value, low in (("--num-fewshot", args.num_fewshot, 0), ("--limit", args.limit, 1),
                             ("--batch-size", args.batch_size, 1)):
        if value is not None and value < low:
            raise UserError(f"{flag}: must be >= {low} (got {value})")


def format_table(rows: list[dict]) -> str:
    """Rows as an aligned text table (values in percent for display)."""
    header = ("task", "metric", "value %", "stderr %", "n", "shots")
    lines = [(row["task"], row["metric"], f"{100 * row['value']:.2f}",
              "" if row["stderr"] is None else f"{100 * row['stderr']:.2f}",
              "" if row["n"] is None else str(row["n"]), "" if row["num_fewshot"] is None else str(row["num_fewshot"]))
             for row in rows]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines)]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths))
                     for line in [header, *lines])


def run(args) -> int:
    from owlore_bench.evaluate import check_tasks, evaluate_model
    from owlore_bench.models import load_model, load_trained
    from owlore_bench.results import write_json_atomic

    tasks = parse_task_list(args.tasks)
    _check_numbers(args)
    check_tasks(tasks)  # before loading the model: a typo costs seconds, not a model load
    if args.run_dir:
        model, tokenizer = load_trained(args.run_dir, dtype=args.dtype, device=args.device)
    else:
        model, tokenizer = load_model(args.model, dtype=args.dtype, device=args.device)
    started = time.time()
    rows = evaluate_model(model, tokenizer, tasks, num_fewshot=args.num_fewshot, limit=args.limit,
                          batch_size=args.batch_size)
    wall_s = time.time() - started
    print(format_table(rows))
    print(f"evaluated {args.run_dir or args.model} on {', '.join(tasks)} in {wall_s:.1f} s")
    if args.out:
        payload = {"model": args.model, "run": args.run_dir, "tasks": tasks, "num_fewshot": args.num_fewshot,
                   "limit": args.limit, "batch_size": args.batch_size, "wall_s": wall_s, "rows": rows}
        write_json_atomic(Path(args.out), payload)
        print(f"rows -> {args.out}")
    return 0
