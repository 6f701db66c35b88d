"""Benchmark: the cost of gradient synchronisation, N processes (torchrun, gloo on CPU) against 1 process at the
same global batch.

Plain script (prints measured figures; not a pass/fail test). Every run trains the same model, method, synthetic
data (random tokens, fixed length) and global batch; each process takes global/N rows of every batch. Printed per
run: the median step time, the median time rank 0 spends in distributed.average_gradients (bucketed all-reduce of
the existing .grads) and in the other collectives of a step (trainable-set check, loss/token sums, memory ledger
gather), the bytes all-reduced per step, tokens/s and the speed-up over the 1-process, 1-thread run. The first
`--warmup` steps are left out of the medians.

  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ddp.py                           # tiny-llama smoke run
  .venv/bin/python benchmarks/bench_ddp.py --model smollm2-135m --steps 12 --global-batch 8 --seq-len 128
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny-llama", help="tiny-llama (default) or smollm2-135m")
    parser.add_argument("--method", default="full_ft", help="registered method (default full_ft)")
    parser.add_argument("--nproc", type=int, default=2, help="processes of the data-parallel run (default 2)")
    parser.add_argument("--single-threads", default="1,2",
                        help="torch threads of the 1-process runs, comma-separated (default 1,2: one core, and "
                             "the same cores the N processes use)")
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps per run (default 12)")
    parser.add_argument("--warmup", type=int, default=2, help="first steps left out of the medians (default 2)")
    parser.add_argument("--global-batch", type=int, default=8, help="rows per optimizer step, all processes (8)")
    parser.add_argument("--seq-len", type=int, default=64, help="tokens per row (default 64)")
    parser.add_argument("--json", help="also write the raw figures to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: train once, write figures to this file
    return parser.parse_args(argv)


def synthetic_examples(vocab: int, length: int, count: int = 256) -> list:
    """Random token rows of a fixed length (loss on the second half): timing needs no real text."""
    from owlore_bench.train.tokenize import Example

    rng = random.Random(0)
    rows = []
    for _ in range(count):
        ids = [rng.randrange(3, vocab) for _ in range(length)]
        rows.append(Example(ids, [-100] * (length // 2) + ids[length // 2:]))
    return rows


def timed(function, seconds: list[float]):
    """`function`, with the wall time of each call appended to `seconds`."""
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - started)
    return wrapper


def worker(args: argparse.Namespace) -> None:
    """One run (under torchrun: one rank of it): train, then rank 0 writes its per-step figures as JSON."""
    import torch

    from owlore_bench.config import TrainConfig
    from owlore_bench.models import load_model
    from owlore_bench.registry import build_method
    from owlore_bench.results import read_jsonl
    from owlore_bench.train import distributed
    from owlore_bench.train.data import TrainingData
    from owlore_bench.train.loop import seed_everything, train

    distributed.init_from_env("cpu")
    world = distributed.world_size()
    model, _ = load_model(args.model, dtype="fp32", device="cpu")
    method = build_method(args.method, {})
    seed_everything(0)
    model = method.prepare(model)
    averaging, others, volume = [], [], []
    average = distributed.average_gradients

    def average_and_count(params, *rest, **kwargs):
        volume.append(sum(p.grad.numel() * p.grad.element_size() for p in params if p.grad is not None))
        return average(params, *rest, **kwargs)

    distributed.average_gradients = timed(average_and_count, averaging)
    for name in ("check_same_trainable", "sum_over_ranks", "gather_memory"):
        setattr(distributed, name, timed(getattr(distributed, name), others))
    cfg = TrainConfig(steps=args.steps, batch_size=args.global_batch // world, max_length=args.seq_len,
                      progress=False, device="cpu", dtype="fp32", seed=0)
    data = TrainingData(synthetic_examples(model.config.vocab_size, args.seq_len), 0, seed=0)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(distributed.from_main(scratch))  # one folder for all ranks: rank 0's metrics.jsonl
        summary = train(model, method, data, cfg, folder)
        rows = read_jsonl(folder / "metrics.jsonl") if distributed.is_main() else []
        distributed.barrier()
    if distributed.is_main():  # grad_accum 1: one average_gradients call and 3 other collectives per step
        Path(args.worker).write_text(json.dumps({
            "status": summary["status"], "error": summary["error"], "processes": world,
            "threads": torch.get_num_threads(), "step_s": [row["step_s"] for row in rows],
            "tokens_per_s": [row["tokens_per_s"] for row in rows], "average_s": averaging,
            "other_collectives_s": [sum(others[i:i + 3]) for i in range(0, len(others), 3)],
            "allreduce_bytes": volume[-1] if volume and world > 1 else 0}))
    distributed.shutdown()


def run_one(args: argparse.Namespace, processes: int, threads: int, out: Path) -> dict:
    """Start one worker (through torchrun when processes > 1) and read back its figures."""
    own = [a for a in sys.argv[1:] if not a.startswith("--worker")]
    script = [str(Path(__file__).resolve()), *own, "--worker", str(out)]
    command = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                *script] if processes > 1 else [sys.executable, *script])
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0 or not out.is_file():
        raise SystemExit(f"run with {processes} process(es) failed:\n{done.stderr[-3000:]}")
    return json.loads(out.read_text())


def median_after(values: list[float], warmup: int) -> float:
    kept = values[warmup:] or values
    return statistics.median(kept) if kept else 0.0


def main() -> None:
    args = parse_args()
    if args.worker:
        worker(args)
        return
    if args.global_batch % args.nproc:
        raise SystemExit(f"--global-batch {args.global_batch} does not split over --nproc {args.nproc}")
    plans = [(1, int(t)) for t in args.single_threads.split(",")] + [(args.nproc, 1)]
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for processes, threads in plans:
            figures = run_one(args, processes, threads, Path(scratch) / f"{processes}x{threads}.json")
            if figures["status"] != "ok":
                raise SystemExit(f"{processes} process(es): {figures['status']} {figures['error']}")
            results.append(figures)
    print(f"{args.model}, {args.method}, global batch {args.global_batch} x {args.seq_len} tokens, "
          f"{args.steps} steps (medians after {args.warmup}), fp32 CPU, gloo")
    print("| processes x threads | step (s) | average_gradients (s) | other collectives (s) | sync share "
          "| all-reduced per step (MiB) | tokens/s | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    base = median_after(results[0]["step_s"], args.warmup)
    for figures in results:
        step = median_after(figures["step_s"], args.warmup)
        sync = median_after(figures["average_s"], args.warmup)
        other = median_after(figures["other_collectives_s"], args.warmup)
        share = (sync + other) / step if figures["processes"] > 1 and step else 0.0
        print(f"| {figures['processes']} x {figures['threads']} | {step:.3f} | {sync:.4f} | {other:.4f} "
              f"| {100 * share:.1f} % | {figures['allreduce_bytes'] / 2**20:.1f} "
              f"| {median_after(figures['tokens_per_s'], args.warmup):,.0f} | {base / step:.2f}x |")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": results}, indent=2))


if __name__ == "__main__":
    main()
