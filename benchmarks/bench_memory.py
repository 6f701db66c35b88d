"""Memory profiler benchmark on SmolLM2-135M (CPU, fp32). Prints measured figures; not a pass/fail test.

1. Ledger overhead: step time with the ledger on vs off, alternating on the same model (real smollm2 weights,
   full fine-tuning), and the bookkeeping calls timed on their own. Target in the issue: <= 3% of step time.
2. Estimate vs measured ledger for each method on the smollm2-135m architecture (random weights: memory does
   not depend on their values), with the relative error per category.

    .venv/bin/python benchmarks/bench_memory.py [--steps 6] [--batch-size 8] [--seq-len 32] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from owlore_bench.memory.estimate import (
    SyntheticBatches,
    estimate_memory,
    measure_memory,
    measured_ledger,
    relative_error,
)
from owlore_bench.memory.ledger import CATEGORIES, ActivationCounter, MemoryLedger
from owlore_bench.models import load_model

MIB = 2**20
FIVE_METHODS = ["full_ft", "lora", "galore", "lisa", "owlore"]


def timed_step(model, optimizer, batch, ledger: MemoryLedger) -> float:
    """Seconds of one loop-shaped step (forward, backward, optimizer step) with `ledger` on or off."""
    started = time.perf_counter()
    ledger.begin_step()
    with ledger.forward():
        loss = model(**batch).loss
    loss.backward()
    ledger.after_backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    ledger.end_step()
    return time.perf_counter() - started


def paired_step_times(args) -> tuple[list[float], list[float]]:
    """Alternating steps with the ledger on and off on the same model: load changes on a shared machine hit
    both alike. Full FT on the real smollm2-135m; the first pair is a warm-up and dropped."""
    model, _ = load_model("smollm2-135m", dtype="fp32", device="cpu")
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
    data = SyntheticBatches(model.config.vocab_size, args.seq_len)
    ledgers = {enabled: MemoryLedger(model, optimizer, enabled=enabled) for enabled in (True, False)}
    on, off = [], []
    for index in range(args.steps + 1):
        batch = data.batch(index, args.batch_size)
        first, second = (True, False) if index % 2 == 0 else (False, True)  # alternate which goes first
        times = {first: timed_step(model, optimizer, batch, ledgers[first]),
                 second: timed_step(model, optimizer, batch, ledgers[second])}
        if index:
            on.append(times[True])
            off.append(times[False])
    return on, off


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


def hook_seconds_per_step(args, repeats: int = 20000) -> tuple[int, float]:
    """(pack-hook calls in one smollm2 forward, CPU seconds those calls cost): the hook timed on its own with
    process time, which other jobs on a shared machine disturb far less than wall-clock step times."""
    model, _ = load_model("smollm2-135m", dtype="fp32", device="cpu")
    batch = SyntheticBatches(model.config.vocab_size, args.seq_len).batch(0, args.batch_size)
    counter = ActivationCounter(model)
    calls = 0
    count = counter._pack

    def counting_pack(tensor):
        nonlocal calls
        calls += 1
        return count(tensor)

    counter._hooks = torch.autograd.graph.saved_tensors_hooks(counting_pack, lambda tensor: tensor)
    with counter:
        model(**batch).loss.backward()
    sample = next(iter(model.parameters())).new_zeros(4)
    started = time.process_time()
    for _ in range(repeats):
        counter._pack(sample)
    return calls, (time.process_time() - started) / repeats * calls


def overhead_section(args) -> list[str]:
    on, off = paired_step_times(args)
    on_s, off_s = statistics.median(on), statistics.median(off)
    ratios = [a / b - 1 for a, b in zip(on, off)]
    reads = bookkeeping_seconds()
    calls, hooks = hook_seconds_per_step(args)
    return [
        f"## Ledger overhead (smollm2-135m, full_ft, fp32 CPU, batch {args.batch_size} x {args.seq_len} tokens, "
        f"{args.steps} alternating pairs of steps)",
        "",
        f"- median step with ledger: {on_s:.3f} s; without: {off_s:.3f} s; median paired difference "
        f"{100 * statistics.median(ratios):+.1f}% (pairs: {', '.join(f'{100 * r:+.1f}%' for r in ratios)})",
        f"- ledger reads per step (weights + gradients + optimizer walk): {1000 * reads:.2f} ms = "
        f"{100 * reads / off_s:.2f}% of a step",
        f"- saved-tensor hook: {calls} calls per forward, {1000 * hooks:.2f} ms of CPU time per step = "
        f"{100 * hooks / off_s:.3f}% of a step",
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
        cells = [f"{estimate[c] / MIB:.1f} / {measured.get(c, 0) / MIB:.1f} "
                 f"({_percent(estimate[c], measured.get(c, 0))})"
                 for c in (*CATEGORIES, "total")]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {estimated_s:.1f} | {measured_s:.1f} |")
        print(lines[-1], flush=True)
    return lines + [""]


def _percent(estimate: int, measured: int) -> str:
    error = relative_error(estimate, measured)
    return "n/a" if error is None else f"{100 * error:+.2f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="timed pairs of steps (ledger on / off)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--measure-steps", type=int, default=2)
    parser.add_argument("--methods", default=",".join(FIVE_METHODS))
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--out", help="also write the figures to this markdown file")
    args = parser.parse_args(argv)
    args.methods = args.methods.split(",")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    lines = [f"# Memory profiler benchmark ({time.strftime('%Y-%m-%d')}, torch {torch.__version__}, "
             f"{torch.get_num_threads()} CPU threads)", ""]
    if not args.skip_overhead:
        lines += overhead_section(args)
        print("\n".join(lines), flush=True)
    if not args.skip_accuracy:
        lines += accuracy_section(args)
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
