"""`owlore-bench memory`: estimate (and optionally measure) training memory per method and category.

Estimates come from owlore_bench.memory.estimate (fake tensors, no real weights: a 7B model in seconds). `--measure`
runs the same configuration for a few real steps on this machine with the measured profiler and prints both,
with the relative error per category. `--levers` prints the method x memory-lever matrix instead
(owlore_bench/memory/levers.py). Bytes everywhere; the table shows GiB.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from owlore_bench.commands import output_folder
from owlore_bench.commands.memory_levers import display_unit, print_levers
from owlore_bench.commands.memory_paper import add_paper_argument, apply_paper_preset, gb_totals_lines
from owlore_bench.errors import UserError
from owlore_bench.memory.estimate import (
    builtin_architectures,
    check_shape,
    estimate_memory,
    load_architecture,
    measure_memory,
    measured_ledger,
    relative_error,
)
from owlore_bench.memory.ledger import CATEGORIES, SNAPSHOT_ENV
from owlore_bench.registry import available_methods, build_method, get_method_class
from owlore_bench.reporting.memory_plot import memory_stacked_bar

LEDGER = (*CATEGORIES, "total")
KEPT = ("optimizer_state_kept", "total_state_kept")  # estimate entries of a method that keeps leaving layers' state


def add_parser(subparsers, help_text: str) -> None:
    parser = subparsers.add_parser("memory", help=help_text,
                                   description="Peak training memory per method, split into weights / gradients / "
                                               "optimizer / activations (bytes), estimated without real weights.",
                                   epilog="examples:\n"
                                          "  owlore-bench memory --paper   # LLaMA2-7B, batch 16 x 512, bf16, "
                                          "checkpointing; totals in GB too\n"
                                          "  owlore-bench memory --model llama2-7b --methods owlore,lora --levers\n"
                                          "  owlore-bench memory --model llama2-7b --nproc 8 --parallel fsdp "
                                          "--grad-checkpointing   # per rank\n"
                                          "  owlore-bench memory --model smollm2-135m --batch-size 2 --seq-len 64 "
                                          "--dtype fp32 --measure --out runs/memory\n")
    parser.add_argument("--model", default="smollm2-135m",
                        help=f"built-in architecture ({', '.join(builtin_architectures())}), a config.json or a "
                             f"checkpoint folder (default smollm2-135m)")
    parser.add_argument("--methods", default=None, help="comma-separated method names (default: every registered one)")
    parser.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=16,
                        help="sequences per step (default 16)")
    parser.add_argument("--seq-len", type=int, default=512, help="tokens per sequence (default 512)")
    parser.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16", help="weight dtype (default bf16)")
    parser.add_argument("--grad-checkpointing", action="store_true", help="recompute activations in backward")
    parser.add_argument("--seed", type=int, default=0, help="seeds adapter init and layer sampling (default 0)")
    parser.add_argument("--steps", type=int,
                        help="the run's training steps: for a method that keeps the optimizer state of layers "
                             "leaving the active set (keep_state), the state it holds at the end of the run "
                             "(default: the bound, state for every layer)")
    parser.add_argument("--update-in-backward", action="store_true",
                        help="each parameter updated inside backward and its gradient freed (train.update_in_backward)")
    parser.add_argument("--optimizer-state-bits", type=int, choices=[32, 8], default=32,
                        help="8: bitsandbytes' 8-bit AdamW states (train.optimizer_state_bits; default 32)")
    parser.add_argument("--offload-activations", action="store_true",
                        help="saved tensors kept in host memory, not counted on the device (train.offload_activations)")
    parser.add_argument("--levers", action="store_true",
                        help="print the method x memory-lever matrix (each lever alone, then stacked in torchtune's "
                             "order) instead of the per-category table")
    parser.add_argument("--set", action="append", default=[], metavar="METHOD.KEY=VALUE",
                        help="a method config field, e.g. --set owlore.rank=128 --set lora.r=16")
    parser.add_argument("--nproc", type=int, default=1, metavar="N",
                        help="processes (GPUs) the run trains on: the table is per rank (batch size per rank)")
    parser.add_argument("--parallel", choices=["replicate", "fsdp"], default="replicate",
                        help="with --nproc: replicate = every rank holds the whole model (default); fsdp = FSDP2 "
                             "shards it, plus the all-gathered buffers in flight (column gathered)")
    parser.add_argument("--measure", action="store_true", help="also run a few real steps here and compare")
    parser.add_argument("--measure-steps", type=int, default=3, help="steps per measured run (default 3)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="device for --measure")
    parser.add_argument("--cuda-snapshot", metavar="DIR",
                        help="with --measure on CUDA: write each method's allocator timeline (first 2 steps) here")
    parser.add_argument("--out", help="folder for memory.csv, memory.md and memory.png")
    add_paper_argument(parser)
    parser.set_defaults(run=run)


def method_configs(names: list[str], assignments: list[str]) -> dict[str, dict[str, Any]]:
    """{method: {field: value}} from `--set METHOD.KEY=VALUE` (value parsed as YAML), fields checked by name."""
    configs: dict[str, dict[str, Any]] = {name: {} for name in names}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        method, dot, field = key.partition(".")
        if not sep or not dot or not field:
            raise UserError(f"--set {assignment!r}: expected METHOD.KEY=VALUE, e.g. --set lora.r=16")
        if method not in configs:
            raise UserError(f"--set {assignment!r}: method '{method}' is not in --methods ({', '.join(names)})")
        fields = get_method_class(method).Config.model_fields
        if field not in fields:
            raise UserError(f"--set {assignment!r}: {method} has no field '{field}'; it has {', '.join(fields)}")
        configs[method][field] = yaml.safe_load(raw)
    return configs


def selected_methods(text: str | None, update_in_backward: bool = False, parallel: str = "replicate") -> list[str]:
    """The --methods names (checked); by default every registered method, less those that do not offer
    update_in_backward when it is asked for, or refuse --parallel fsdp (each named in one line)."""
    names = [name.strip() for name in text.split(",") if name.strip()] if text else list(available_methods())
    for name in names:
        get_method_class(name)  # unknown name: one line with the known ones and a "did you mean"
    for flag, refuses in (("--update-in-backward", update_in_backward and "no_update_in_backward"),
                          ("--parallel fsdp", parallel == "fsdp" and "no_fsdp")):
        left_out = [name for name in names if refuses and not text and getattr(get_method_class(name), refuses)]
        names = [name for name in names if name not in left_out]
        if left_out:
            print(f"{flag}: not offered for {', '.join(left_out)}; left out")
    if not names:
        raise UserError("--methods: give at least one method name (see `owlore-bench methods`)")
    return names


def estimate_rows(args, names: list[str], configs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per method: the estimate (bytes), and with --measure the measured peaks and relative errors. A
    method that cannot be set up for this architecture (refused, or failing) is a row with status 'failed' and
    its one-line reason; the table goes on with the next method."""
    rows = []
    for name in names:
        shape = dict(batch_size=args.batch_size, seq_len=args.seq_len, dtype=args.dtype,
                     grad_checkpointing=args.grad_checkpointing, seed=args.seed,
                     update_in_backward=args.update_in_backward, optimizer_state_bits=args.optimizer_state_bits,
                     offload_activations=args.offload_activations)
        try:
            estimate = estimate_memory(args.model, name, configs[name], steps=args.steps, world_size=args.nproc,
                                       parallel=args.parallel, **shape)
        except UserError as error:
            rows.append({"method": name, "status": "failed", "error": str(error)})
            continue
        row: dict[str, Any] = {"method": name, **{f"est_{c}_bytes": estimate[c] for c in LEDGER},
                               "trainable_params": estimate["trainable_params"]}
        row.update({f"est_{key}_bytes": estimate[key] for key in (*KEPT, "gathered") if key in estimate})
        if args.measure:
            try:
                row.update(measured_row(args, name, configs[name], shape, estimate))
            except UserError as error:
                row.update(status="failed", error=str(error))
        rows.append(row)
    return rows


def estimated(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows that have an estimate (a failed method's row has only its reason)."""
    return [row for row in rows if "est_total_bytes" in row]


def measured_row(args, name: str, config: dict[str, Any], shape: dict[str, Any],
                 estimate: dict[str, int]) -> dict[str, Any]:
    if args.cuda_snapshot:
        os.environ[SNAPSHOT_ENV] = str(Path(args.cuda_snapshot) / f"{name}.pickle")
    summary = measure_memory(args.model, name, config, steps=args.measure_steps, device=args.device, **shape)
    os.environ.pop(SNAPSHOT_ENV, None)
    measured = measured_ledger(summary)
    row: dict[str, Any] = {"status": summary["status"], "error": summary["error"]}
    for key, value in measured.items():
        row[f"meas_{key}_bytes"] = value
    for category in LEDGER:
        if category in measured:
            row[f"rel_err_{category}"] = relative_error(estimate[category], measured[category])
    return row


def display_table(rows: list[dict[str, Any]]):
    """A pandas DataFrame for people: GiB or MiB with 3 decimals, relative errors in percent."""
    import pandas as pd

    unit, size = display_unit(estimated(rows) or [{"est_total_bytes": 0}])
    table = []
    for row in rows:
        shown: dict[str, Any] = {"method": row["method"]}
        for category in (*CATEGORIES, "gathered", "total") if "est_gathered_bytes" in row else LEDGER:
            if f"est_{category}_bytes" not in row:
                shown[f"{category} {unit}"] = "-"
                continue
            shown[f"{category} {unit}"] = round(row[f"est_{category}_bytes"] / size, 3)
            if f"meas_{category}_bytes" in row:
                shown[f"{category} {unit}"] = (f"{row[f'est_{category}_bytes'] / size:.3f} / "
                                               f"{row[f'meas_{category}_bytes'] / size:.3f} "
                                               f"({_percent(row.get(f'rel_err_{category}'))})")
        for extra in ("cuda_max_allocated", "cuda_max_reserved", "rss"):
            if f"meas_{extra}_bytes" in row:
                shown[f"measured {extra} {unit}"] = round(row[f"meas_{extra}_bytes"] / size, 3)
        if "status" in row:
            shown["status"] = row["status"]
        if any(other.get("error") for other in rows):
            shown["error"] = row.get("error") or ""
        table.append(shown)
    return pd.DataFrame(table)


def kept_state_lines(rows: list[dict[str, Any]], steps: int | None, seed: int) -> list[str]:
    """One line per method that keeps the optimizer state of leaving layers: its state and total at the end of
    the run next to step 0's (the table's), over --steps with this seed, or the every-layer bound without it."""
    unit, size = display_unit(estimated(rows) or [{"est_total_bytes": 0}])
    over = (f"after {steps:,} steps (layers drawn with seed {seed})" if steps is not None
            else "bound without --steps (every layer holds state)")

    def shown(row: dict[str, Any], key: str) -> str:
        return f"{row[f'est_{key}_bytes'] / size:.3f}"

    return [f"{row['method']}: optimizer state kept (keep_state), {over}: optimizer "
            f"{shown(row, 'optimizer_state_kept')} {unit} (step 0: {shown(row, 'optimizer')}), "
            f"total {shown(row, 'total_state_kept')} {unit} (step 0: {shown(row, 'total')})"
            for row in rows if "est_optimizer_state_kept_bytes" in row]


def check_processes(args) -> None:
    """One line for --nproc / --parallel values the command cannot estimate or measure."""
    if args.nproc < 1:
        raise UserError(f"--nproc: {args.nproc} is not a process count; use 1 or more, e.g. --nproc 8")
    if args.measure and args.nproc > 1:
        raise UserError("--measure runs here, in one process; drop it with --nproc N (the estimate is per rank; "
                        "`owlore-bench train --nproc N` records every rank's ledger in metrics.jsonl)")
    if args.levers and (args.nproc > 1 or args.parallel == "fsdp"):
        raise UserError("--levers: the lever matrix is for one process; drop --levers or --nproc/--parallel")


def _ranks(args) -> str:
    """The title's words for the processes: ', per rank of 8 (fsdp: sharded, gathered buffers included)'."""
    if args.parallel == "fsdp":
        return f", per rank of {args.nproc} (fsdp: sharded; total includes the gathered buffers)"
    return f", per rank of {args.nproc} (replicate: each rank holds it all)" if args.nproc > 1 else ""


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f}%"


def write_outputs(rows: list[dict[str, Any]], out: Path, title: str, notes: list[str]) -> None:
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out / "memory.csv", index=False)  # bytes: the machine-readable copy
    (out / "memory.md").write_text(f"{title}\n\n{display_table(rows).to_markdown(index=False)}\n"
                                   + "".join(f"\n- {note}" for note in notes) + ("\n" if notes else ""))
    if estimated(rows):
        unit, size = display_unit(estimated(rows))
        memory_stacked_bar(estimated(rows), out / "memory.png", title, unit, size)


def run(args) -> int:
    apply_paper_preset(args)
    out = output_folder(args.out) if args.out else None
    check_shape(args.batch_size, args.seq_len)
    if args.measure_steps <= 0:
        raise UserError(f"--measure-steps must be a positive number of steps (got {args.measure_steps})")
    if args.steps is not None and args.steps <= 0:
        raise UserError(f"--steps must be a positive number of training steps (got {args.steps})")
    load_architecture(args.model)  # an unknown architecture fails before any work
    check_processes(args)
    names = selected_methods(args.methods, args.update_in_backward, args.parallel)
    configs = method_configs(names, args.set)
    for name in names:
        build_method(name, configs[name])  # a bad --set value is one line before any work, not a row
    if args.levers:
        return print_levers(args, names, configs, out)
    rows = estimate_rows(args, names, configs)
    title = (f"{args.model}, batch {args.batch_size} x seq {args.seq_len}{' per rank' if args.nproc > 1 else ''}, "
             f"{args.dtype}{_ranks(args)}, gradient checkpointing "
             f"{'on' if args.grad_checkpointing else 'off'}"
             + (", update in backward" if args.update_in_backward else "") + "; estimate"
             + (" / measured (error)" if args.measure else ""))
    notes = kept_state_lines(rows, args.steps, args.seed)
    print(title)
    print(display_table(rows).to_string(index=False))
    if args.paper:
        print("\n".join(gb_totals_lines(rows)))
    for note in notes:
        print(note)
    if out:
        write_outputs(rows, out, title, notes)
        print(f"wrote {out / 'memory.csv'}, memory.md, memory.png")
    failed = [row["method"] for row in rows if row.get("status") not in (None, "ok")]
    return 1 if failed else 0
