"""GPU memory check: each method for a few steps in bf16 with the measured profiler, next to the estimator.

Runs (a) the smollm2-135m architecture and (b) the LLaMA2-7B architecture at the paper's settings (batch 16,
seq 512, gradient checkpointing), random weights built from the shipped configs (memory does not depend on
weight values; no model files travel). Prints per method: CUDA peak allocated / reserved, the ledger, the
estimate and the relative errors, and for OwLore at 7B the measured peak next to the paper's 21 GB. An OOM is
recorded as data (status oom). Writes <out>/gpu_check_<card>.md and .json.

A third part runs smollm2-135m sharded with FSDP2 on one nccl rank (`train.parallel: fsdp`, world size 1: fp32
master shards, bf16 compute), so the first lent GPU also checks the sharded path and the estimate's all-gathered
buffers (column `est. gathered`, part of the estimated total) against the CUDA peak.

`--smoke`: the tiny test architecture on CPU in fp32, 2 steps, lora and owlore, and owlore under FSDP on one gloo
rank: proves the script works without a GPU (tests/test_estimate.py runs it).
Called by scripts/gpu_check.sh, which installs the carried wheels first.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
import time
import types
from pathlib import Path

PAPER_OWLORE_7B_BYTES = 21e9  # "LLaMA2-7B fine-tuned in 21 GB" (the paper's claim; GB = 1e9 bytes assumed)
GIB = 2**30


def stub_bitsandbytes() -> None:
    """galore_torch/__init__ imports its 8-bit AdamW, which imports bitsandbytes; the GPU image has none and
    nothing here uses 8-bit optimizers. Register empty stand-in modules, for this process only."""
    if importlib.util.find_spec("bitsandbytes") is not None:
        return
    names = ["bitsandbytes", "bitsandbytes.optim", "bitsandbytes.optim.optimizer", "bitsandbytes.functional"]
    modules = {name: types.ModuleType(name) for name in names}
    modules["bitsandbytes.optim.optimizer"].Optimizer2State = type("Optimizer2State", (), {})
    modules["bitsandbytes"].optim = modules["bitsandbytes.optim"]
    modules["bitsandbytes"].functional = modules["bitsandbytes.functional"]
    modules["bitsandbytes.optim"].optimizer = modules["bitsandbytes.optim.optimizer"]
    sys.modules.update(modules)


def plans(smoke: bool) -> list[dict]:
    """(architecture, shape, method order) per part; at 7B the cheapest and most important methods go first,
    GaLore (224 SVDs at its first step) last, so a time budget cuts the least."""
    if smoke:
        tiny = dict(architecture="tiny-llama", batch_size=2, seq_len=32, dtype="fp32", grad_checkpointing=True,
                    device="cpu")
        return [dict(methods=["lora", "owlore"], **tiny),  # owlore covers GaLore and sampling
                dict(methods=["owlore"], parallel="fsdp", **tiny)]  # FSDP2 on one gloo rank
    paper = dict(batch_size=16, seq_len=512, dtype="bf16", grad_checkpointing=True, device="cuda")
    return [dict(architecture="smollm2-135m", methods=["full_ft", "lora", "galore", "lisa", "owlore"], **paper),
            # FSDP2 on one nccl rank (fp32 master shards, bf16 compute): the sharded path and the estimate's
            # all-gathered buffers (`gathered`) against the CUDA peak
            dict(architecture="smollm2-135m", methods=["full_ft", "owlore"], parallel="fsdp", **paper),
            dict(architecture="llama2-7b", methods=["owlore", "lora", "lisa", "full_ft", "galore"], **paper)]


def method_config(architecture: str, method: str, smoke: bool) -> dict:
    """Official OwLore settings are its defaults (γ=5, rank 256); the tiny smoke model has 4 layers."""
    return {"gamma": 2} if smoke and method == "owlore" else {}


def check_one(plan: dict, method: str, steps: int, smoke: bool) -> dict:
    from owlore_bench.memory.estimate import estimate_memory, measure_memory, measured_ledger, relative_error

    shape = {k: plan[k] for k in ("batch_size", "seq_len", "dtype", "grad_checkpointing")}
    config = method_config(plan["architecture"], method, smoke)
    parallel = plan.get("parallel", "replicate")
    row: dict = {"architecture": plan["architecture"], "method": method, "parallel": parallel, **shape,
                 "method_config": config}
    started = time.perf_counter()
    estimate = estimate_memory(plan["architecture"], method, config, parallel=parallel, **shape)
    row["estimate_s"] = round(time.perf_counter() - started, 1)
    row.update({f"est_{key}_bytes": value for key, value in estimate.items() if key != "trainable_params"})
    try:
        summary = measure_memory(plan["architecture"], method, config, steps=steps, device=plan["device"],
                                 parallel=parallel, **shape)
        row.update(status=summary["status"], error=summary["error"], steps=summary["steps"])
        measured = measured_ledger(summary)
    except Exception as error:  # noqa: BLE001 — e.g. an OOM while building the model: data, not a crash
        oom = "out of memory" in str(error).lower()
        row.update(status="oom" if oom else "failed", error=f"{type(error).__name__}: {str(error).splitlines()[0]}")
        measured = {}
    row.update({f"meas_{key}_bytes": value for key, value in measured.items()})
    for category in ("weights", "gradients", "optimizer", "activations", "total"):
        if category in measured:
            row[f"rel_err_{category}"] = relative_error(estimate[category], measured[category])
    row["wall_s"] = round(time.perf_counter() - started, 1)
    _release_memory()
    return row


def _release_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def describe(row: dict) -> str:
    def gib(key: str) -> str:
        return f"{row[key] / GIB:.2f}" if key in row else "-"

    def err(category: str) -> str:
        value = row.get(f"rel_err_{category}")
        return "-" if value is None else f"{100 * value:+.1f}%"

    parallel = f" ({row['parallel']})" if row.get("parallel", "replicate") != "replicate" else ""
    cells = [row["architecture"], row["method"] + parallel, row.get("status", "-"),
             gib("meas_cuda_max_allocated_bytes"), gib("meas_cuda_max_reserved_bytes")]
    for category in ("weights", "gradients", "optimizer", "activations", "total"):
        cells.append(f"{gib(f'meas_{category}_bytes')} / {gib(f'est_{category}_bytes')} ({err(category)})")
    cells.append(gib("est_gathered_bytes"))  # FSDP: all-gathered buffers in flight, in the estimate's total
    return "| " + " | ".join(cells) + " |"


HEADER = ("| architecture | method | status | CUDA peak allocated GiB | CUDA peak reserved GiB | weights | gradients "
          "| optimizer | activations | total | est. gathered (fsdp) |\n|---|---|---|---|---|---|---|---|---|---|---|")


def paper_line(rows: list[dict]) -> str:
    for row in rows:
        if row["architecture"] == "llama2-7b" and row["method"] == "owlore":
            peak = row.get("meas_cuda_max_allocated_bytes")
            measured = f"{peak / 1e9:.1f} GB ({peak / GIB:.1f} GiB) CUDA peak allocated" if peak else row.get("status")
            return (f"OwLore, LLaMA2-7B, bf16, batch 16 x 512, gradient checkpointing, γ=5, rank 256: measured "
                    f"{measured}; estimated ledger {row['est_total_bytes'] / 1e9:.1f} GB; paper: 21 GB.")
    return "OwLore at 7B: not run."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny model on CPU, fp32, 2 steps")
    parser.add_argument("--steps", type=int, default=None, help="measured steps per method (default 10; smoke 2)")
    parser.add_argument("--budget-s", type=float, default=240, help="skip the remaining runs after this many seconds")
    parser.add_argument("--out", default="results/gpu", help="folder for the markdown and JSON results")
    args = parser.parse_args(argv)
    stub_bitsandbytes()
    import torch

    if not args.smoke and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU visible; use --smoke to test the script on CPU", file=sys.stderr)
        return 2
    steps = args.steps or (2 if args.smoke else 10)
    card = "cpu-smoke" if args.smoke else torch.cuda.get_device_name()
    started, rows = time.perf_counter(), []
    print(f"# gpu_check on {card}, torch {torch.__version__}, {steps} steps per method\n\n"
          "measured ledger / estimate (relative error), GiB\n\n" + HEADER, flush=True)
    for plan in plans(args.smoke):
        for method in plan["methods"]:
            if time.perf_counter() - started > args.budget_s:
                rows.append({"architecture": plan["architecture"], "method": method, "status": "skipped (time budget)"})
            else:
                rows.append(check_one(plan, method, steps, args.smoke))
            print(describe(rows[-1]), flush=True)
    summary = paper_line(rows)
    print(f"\n{summary}\ntotal {time.perf_counter() - started:.0f} s")
    write_results(Path(args.out), card, rows, summary, steps)
    return 0 if all(row.get("status") in ("ok", "oom") for row in rows) else 1


def write_results(out: Path, card: str, rows: list[dict], summary: str, steps: int) -> None:
    import torch

    out.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", card)
    table = "\n".join(describe(row) for row in rows)
    (out / f"gpu_check_{name}.md").write_text(
        f"# gpu_check on {card} (torch {torch.__version__}, {steps} steps per method)\n\nmeasured ledger / "
        f"estimate (relative error), GiB\n\n{HEADER}\n{table}\n\n{summary}\n")
    (out / f"gpu_check_{name}.json").write_text(json.dumps({"card": card, "torch": torch.__version__,
                                                            "steps": steps, "rows": rows}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
