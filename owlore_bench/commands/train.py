"""`owlore-bench train`: fine-tune one model with one method and write config.json, metrics.jsonl, summary.json."""

from __future__ import annotations

import sys
from pathlib import Path

from owlore_bench.config import DataConfig, RunConfig, TrainConfig, apply_overrides, parse, read_yaml
from owlore_bench.errors import UserError
from owlore_bench.launch.torchrun import add_nproc_argument, add_parallel_argument, check_nproc, relaunch
from owlore_bench.registry import get_method_class
from owlore_bench.train import distributed
from owlore_bench.train.data_plan import plan_lines, steps_to_run, tokenize_data
from owlore_bench.train.run import check_out_dir, check_run, train_run

# flag name → (section, field); flags left unset keep the config file's or the defaults' values
_FLAGS = {"steps": ("train", "steps"), "epochs": ("train", "epochs"), "batch_size": ("train", "batch_size"),
          "max_length": ("train", "max_length"),
          "lr": ("train", "lr"), "seed": ("train", "seed"), "dtype": ("train", "dtype"), "device": ("train", "device"),
          "parallel": ("train", "parallel")}


def field_help(model, field: str) -> str:
    """A flag's help: its config field's description (each field is documented once, in its Field) and default."""
    info = model.model_fields[field]
    default = "" if info.default is None or info.is_required() else f" (default {info.default})"
    return (info.description + default).replace("%", "%%")  # argparse formats help with %


def add_parser(subparsers, help_text: str) -> None:
    parser = subparsers.add_parser("train", help=help_text,
                                   description="One fine-tuning run: writes config.json, metrics.jsonl (one line per "
                                               "step, memory ledger in bytes), summary.json and model/.",
                                   epilog="examples:\n"
                                          "  owlore-bench train --method owlore --model smollm2-135m "
                                          "--data commonsense:default "
                                          "--steps 40 --out runs/owlore\n"
                                          "  owlore-bench train --method lora --model tiny-llama --data train.json "
                                          "--set method.r=16 --set train.report_to=[tensorboard]\n"
                                          "  owlore-bench train --method lisa --model tiny-llama --data train.json "
                                          "--nproc 2   # data parallel: 2 processes (torchrun)\n"
                                          "  owlore-bench train --method galore --model tiny-llama --data train.json "
                                          "--nproc 2 --parallel fsdp   # sharded: FSDP2\n"
                                          "  (an interrupted run resumes when rerun with the same --out, "
                                          "given train.checkpoint_every > 0)\n")
    parser.add_argument("--config", help="run config YAML (flags and --set override it)")
    parser.add_argument("--method", help="method name (see `owlore-bench methods`)")
    parser.add_argument("--model", help="HF id or path, 'smollm2-135m' (default) or 'tiny-llama'")
    parser.add_argument("--data", help=field_help(DataConfig, "path"))
    parser.add_argument("--template", choices=["alpaca", "plain"], help="prompt template (default alpaca)")
    parser.add_argument("--steps", type=int, help=field_help(TrainConfig, "steps"))
    parser.add_argument("--epochs", type=float, help=field_help(TrainConfig, "epochs"))
    parser.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int,
                        help=field_help(TrainConfig, "batch_size"))
    parser.add_argument("--max-length", "--max_length", dest="max_length", type=int,
                        help=field_help(TrainConfig, "max_length"))
    parser.add_argument("--lr", type=float, help=field_help(TrainConfig, "lr"))
    parser.add_argument("--seed", type=int, help=field_help(TrainConfig, "seed"))
    parser.add_argument("--dtype", choices=["auto", "bf16", "fp32"], help=field_help(TrainConfig, "dtype"))
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help=field_help(TrainConfig, "device"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any field, e.g. --set train.warmup_steps=10 --set method.r=16")
    parser.add_argument("--out", "--output_path", dest="out", default="runs/train",
                        help="output folder (default runs/train)")
    parser.add_argument("--force", action="store_true", help="overwrite an output folder that holds another config")
    parser.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true",
                        help="read and tokenize (or pack) the data with the model's tokenizer only, print records, "
                             "tokens, blocks, steps per epoch and tokens per step, and train nothing")
    add_nproc_argument(parser)
    add_parallel_argument(parser)
    parser.set_defaults(run=run)


def resolve_run_config(args) -> RunConfig:
    """RunConfig from --config, then the flags, then --set (later wins)."""
    values = read_yaml(args.config) if args.config else {}
    for key in ("method", "model"):
        if getattr(args, key):
            values[key] = getattr(args, key)
    data = values.setdefault("data", {}) if isinstance(values.get("data", {}), dict) else values["data"]
    if args.data:
        data["path"] = args.data
    if args.template:
        data["template"] = args.template
    for flag, (section, field) in _FLAGS.items():
        if getattr(args, flag) is not None:
            values.setdefault(section, {})[field] = getattr(args, flag)
            if flag in ("steps", "epochs"):  # --steps replaces the config file's epochs, and --epochs its steps
                values["train"].pop("epochs" if flag == "steps" else "steps", None)
    if "method" not in values:
        raise UserError("method: missing; pass --method NAME (see `owlore-bench methods`)")
    known = {"train": set(TrainConfig.model_fields), "data": set(DataConfig.model_fields),
             "method_config": set(get_method_class(values["method"]).Config.model_fields)}
    values = apply_overrides(values, args.set, known)
    return parse(RunConfig, values)


def run(args) -> int:
    cfg = resolve_run_config(args)
    if args.dry_run:
        return print_data_plan(cfg, args.nproc or 1)
    out_dir = Path(args.out)
    check_out_dir(cfg, out_dir, force=args.force)
    if args.nproc is not None:
        check_nproc(args.nproc, cfg.train.device)
        check_run(cfg, args.nproc)  # method, settings and data: one line here, not one per rank
        steps_to_run(tokenize_data(cfg), cfg.train, args.nproc)
        if args.nproc > 1:
            return relaunch(args.nproc, args.command_line)  # this same command, as N torchrun processes
    distributed.init_from_env(cfg.train.device)
    main = distributed.is_main()
    try:
        summary, *_ = train_run(cfg, out_dir)
    finally:
        distributed.shutdown()
    if not main:
        return 0 if summary["status"] == "ok" else 1
    print(f"{summary['method']}: status {summary['status']}, {summary['steps']} steps, final loss "
          f"{summary['final_loss']}, {summary['trainable_params']:,} trainable params, "
          f"{summary['tokens_per_s'] or 0:.0f} tokens/s, {summary['wall_s']:.1f} s -> {out_dir}")
    if summary.get("error"):
        print(f"owlore-bench: {summary['status']}: {summary['error']}", file=sys.stderr)
    return 0 if summary["status"] == "ok" else 1


def print_data_plan(cfg: RunConfig, world_size: int = 1) -> int:
    """--dry-run: the data facts of this config (no model weights are loaded; nothing is written)."""
    print("\n".join(plan_lines(tokenize_data(cfg), cfg.train, world_size)))
    return 0
