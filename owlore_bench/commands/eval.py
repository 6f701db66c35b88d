"""`owlore-bench eval`: score a model (or a trained run) on lm-eval tasks, print a table, write the rows."""

from __future__ import annotations

import time

from owlore_bench.commands import eval_output_file
from owlore_bench.errors import UserError

EXAMPLES = """examples:
  owlore-bench eval --model smollm2-135m --tasks commonsense6_choices --limit 100
  owlore-bench eval --run runs/quickstart/lora/seed-0 --tasks boolq_labels --out runs/lora_eval.json
  owlore-bench eval --model_args pretrained=smollm2-135m,dtype=float32 --tasks arc_easy_choices \\
      --num_fewshot 5 --batch_size 16 --output_path runs/arc.json      # lm-eval's spellings work too
"""
MODEL_ARGS = {"pretrained": "model", "dtype": "dtype", "device": "device"}  # lm-eval key -> our option
DTYPE_NAMES = {"auto": "auto", "bf16": "bf16", "bfloat16": "bf16", "fp32": "fp32", "float32": "fp32"}


def add_parser(subparsers, help_text: str) -> None:
    parser = subparsers.add_parser("eval", help=help_text,
                                   description="Score a model (or a trained run folder) with lm-eval tasks through "
                                               "HFLM; prints a table and optionally writes the rows as JSON.",
                                   epilog=EXAMPLES)
    parser.add_argument("--model", default="smollm2-135m",
                        help="HF id or path, 'smollm2-135m' (default) or 'tiny-llama'; ignored with --run")
    parser.add_argument("--model_args", "--model-args", dest="model_args", metavar="K=V,...",
                        help="lm-eval style: pretrained=ID,dtype=bfloat16|float32|auto,device=cpu|cuda|auto "
                             "(overrides --model/--dtype/--device)")
    parser.add_argument("--run", dest="run_dir",
                        help="a trained run folder (config.json + model/): evaluates its weights/adapter")
    parser.add_argument("--tasks", default="commonsense6_choices",
                        help="comma-separated task names: <task>_choices / <task>_labels (commonsense; the six "
                             "embedded ones together: commonsense6_choices / commonsense6_labels), mmlu_local, "
                             "bigbench_default and bb_<name> (your BIG-bench), or any lm-eval task (default "
                             "commonsense6_choices)")
    parser.add_argument("--num-fewshot", "--num_fewshot", dest="num_fewshot", type=int,
                        help="examples in the prompt (default: each task's own)")
    parser.add_argument("--limit", type=int, help="score at most this many documents per task")
    parser.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=8,
                        help="sequences per forward pass (default 8)")
    parser.add_argument("--dtype", choices=["auto", "bf16", "fp32"], default="auto",
                        help="weights while scoring: auto (default) = bf16 on CUDA, fp32 on CPU")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="auto (default) = cuda when available, else cpu")
    parser.add_argument("--out", "--output_path", dest="out",
                        help="folder to write eval.json into (a path ending in .json is the file itself, as in "
                             "lm-eval)")
    parser.set_defaults(run=run)


def parse_task_list(text: str) -> list[str]:
    tasks = [name.strip() for name in text.split(",") if name.strip()]
    if not tasks:
        raise UserError("--tasks: empty; name at least one task, e.g. --tasks arc_easy_choices,commonsense6_labels")
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


def apply_model_args(args) -> None:
    """Fold lm-eval's `--model_args pretrained=...,dtype=...,device=...` into --model/--dtype/--device."""
    if not args.model_args:
        return
    for item in args.model_args.split(","):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or key not in MODEL_ARGS or not value:
            raise UserError(f"--model_args: cannot use {item!r}; expected comma-separated key=value with keys "
                            f"{', '.join(MODEL_ARGS)}, e.g. pretrained=smollm2-135m,dtype=float32")
        if key == "dtype":
            if value not in DTYPE_NAMES:
                raise UserError(f"--model_args: dtype={value} is not supported; use one of {', '.join(DTYPE_NAMES)}")
            value = DTYPE_NAMES[value]
        if key == "device" and value not in ("auto", "cpu", "cuda"):
            raise UserError(f"--model_args: device={value} is not supported; use auto, cpu or cuda")
        setattr(args, MODEL_ARGS[key], value)


def run(args) -> int:
    from owlore_bench.evaluation.harness import check_tasks, evaluate_model, evaluate_model_with_samples
    from owlore_bench.evaluation.samples import SAMPLES_DIR, write_samples
    from owlore_bench.models import load_model
    from owlore_bench.results import write_json_atomic
    from owlore_bench.train.run import load_trained

    apply_model_args(args)
    tasks = parse_task_list(args.tasks)
    _check_numbers(args)
    out_file = eval_output_file(args.out) if args.out else None  # before the evaluation: never lose rows
    check_tasks(tasks)  # before loading the model: a typo costs seconds, not a model load
    if args.run_dir:
        model, tokenizer = load_trained(args.run_dir, dtype=args.dtype, device=args.device)
    else:
        model, tokenizer = load_model(args.model, dtype=args.dtype, device=args.device)
    started = time.time()
    options = {"num_fewshot": args.num_fewshot, "limit": args.limit, "batch_size": args.batch_size}
    if out_file:  # keep the per-question outcomes too: samples/ beside the output file
        rows, samples, protocol = evaluate_model_with_samples(model, tokenizer, tasks, **options)
    else:
        rows, samples, protocol = evaluate_model(model, tokenizer, tasks, **options), {}, None
    wall_s = time.time() - started
    print(format_table(rows))
    print(f"evaluated {args.run_dir or args.model} on {', '.join(tasks)} in {wall_s:.1f} s")
    if out_file:
        payload = {"model": args.model, "run": args.run_dir, "tasks": tasks, "num_fewshot": args.num_fewshot,
                   "limit": args.limit, "batch_size": args.batch_size, "wall_s": wall_s, "rows": rows,
                   "protocol": protocol}
        write_samples(out_file.parent, samples)  # before the rows: last file wins
        write_json_atomic(out_file, payload)
        print(f"rows -> {out_file}; per-question outcomes -> {out_file.parent / SAMPLES_DIR}")
    return 0
