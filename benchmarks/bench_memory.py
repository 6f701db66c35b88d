"""Memory profiler benchmark on SmolLM2-135M (CPU, fp32). Prints measured figures; not a pass/fail test.

1. Ledger overhead: median step time of the shared loop with memory_profile on vs off (real smollm2 weights,
   full fine-tuning), and the bookkeeping calls timed on their own. Target in the issue: <= 3% of step time.
2. Estimate vs measured ledger for each method on the smollm2-135m architecture (random weights: memory does
   not depend on their values), with the relative error per category.

    .venv/bin/python benchmarks/bench_memory.py [--steps 4] [--batch-size 8] [--seq-len 32] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from owlore_bench.config import TrainConfig
from owlore_bench.estimate import (SyntheticBatches, estimate_memory, measure_memory, measured_ledger,
                                   relative_error)
from owlore_bench.loop import train
from owlore_bench.memory import CATEGORIES, MemoryLedger
from owlore_bench.models import load_model
from owlore_bench.registry import build_method

MIB = 2**20
FIVE_METHODS = ["full_ft", "lora", "galore", "lisa", "owlore"]


def step_times(memory_profile: bool, args) -> list[float]:
    """Step seconds of full FT on the real smollm2-135m, the first (warm-up) step dropped."""
    model, _ = load_model("smollm2-135m", dtype="fp32", device="cpu")
    method = build_method("full_ft")
    model = method.prepare(model)
    cfg = TrainConfig(steps=args.steps + 1, batch_size=args.batch_size, max_length=args.seq_len, dtype="fp32",
                      device="cpu", memory_profile=memory_profile, progress=False, schedule="constant")
    with tempfile.TemporaryDirectory() as out:
        summary = train(model, method, SyntheticBatches(model.config.vocab_size, args.seq_len), cfg, out)
        rows = [line for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    import json

    return [json.loads(row)["step_s"] for row in rows][1:] if summary["status"] == "ok" else []


def bookkeeping_seconds(repeats: int = 20) -> float:
    """Seconds of the ledger's per-step reads (weights, gradients, optimizer state) on a trained-state smollm2."""
    model, _ = load_model("smollm2-135m", dtype="fp32", device="cpu")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    ledger = MemoryLedger(model, optimizer)
    started = time.perf_counter()
    for _ in range(repeats):
        ledger.begin_step()
        ledger.after_backward()
        ledger.end_step()
    return (time.perf_counter() - started) / repeats


def overhead_section(args) -> list[str]:
    on, off = step_times(True, args), step_times(False, args)
    on_s, off_s = statistics.median(on), statistics.median(off)
    reads = bookkeeping_seconds()
    return [
        f"## Ledger overhead (smollm2-135m, full_ft, fp32 CPU, batch {args.batch_size} x {args.seq_len} tokens, "
        f"{args.steps} timed steps each)",
        "",
        f"- median step with ledger: {on_s:.3f} s; without: {off_s:.3f} s; difference {100 * (on_s - off_s) / off_s:+.1f}% "
        f"(steps on: {', '.join(f'{s:.2f}' for s in on)}; off: {', '.join(f'{s:.2f}' for s in off)})",
        f"- ledger reads per step (weights + gradients + optimizer walk): {1000 * reads:.2f} ms = "
        f"{100 * reads / off_s:.2f}% of a step",
        "",
    ]


def accuracy_section(args) -> list[str]:
    shape = dict(batch_size=args.batch_size, seq_len=args.seq_len, dtype="fp32", seed=0)
    lines = [f"## Estimate vs measured ledger (smollm2-135m architecture, fp32 CPU, batch {args.batch_size} x "
             f"{args.seq_len}, {args.measure_steps} measured steps; MiB, error = (estimate - measured) / measured)", "",
             "| method | " + " | ".join(CATEGORIES) + " | total | estimate s | measure s |",
             "|---" * (len(CATEGORIES) + 4) + "|"]
    for method in args.methods:
        started = time.perf_counter()
        estimate = estimate_memory("smollm2-135m", method, **shape)
        estimated_s = time.perf_counter() - started
        summary = measure_memory("smollm2-135m", method, steps=args.measure_steps, device="cpu", **shape)
        measured_s = time.perf_counter() - started - estimated_s
        measured = measured_ledger(summary)
        cells = [f"{estimate[c] / MIB:.1f} / {measured.get(c, 0) / MIB:.1f} ({_percent(estimate[c], measured.get(c, 0))})"
                 for c in (*CATEGORIES, "total")]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {estimated_s:.1f} | {measured_s:.1f} |")
        print(lines[-1], flush=True)
    return lines + [""]


def _percent(estimate: int, measured: int) -> str:
    error = relative_error(estimate, measured)
    return "n/a" if error is None else f"{100 * error:+.2f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="timed steps per overhead run")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--measure-steps", type=int, default=2)
    parser.add_argument("--methods", default=",".join(FIVE_METHODS))
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--out", help="also write the figures to this markdown file")
    args = parser.parse_args(argv)
    args.methods = args.methods.split(",")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    lines = [f"# Memory profiler benchmark ({time.strftime('%Y-%m-%d')}, torch {torch.__version__}, "
             f"{torch.get_num_threads()} CPU threads)", ""]
    if not args.skip_overhead:
        lines += overhead_section(args)
        print("\n".join(lines), flush=True)
    lines += accuracy_section(args)
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
