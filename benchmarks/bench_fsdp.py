"""Benchmark: replicate against FSDP (train.parallel) on N gloo processes: step time and bytes communicated per step.

Plain script (prints measured figures; not a pass/fail test). One torchrun runs every (method, mode) pair
`--repeats` times, the two modes alternating (replicate, fsdp, replicate, fsdp, ...) so that a drift of the
machine's load hits both alike. Every run trains the same model, method, synthetic rows and global batch. Per
step, rank 0 counts every collective that reaches torch's c10d or functional-collective ops (a TorchDispatchMode,
the mechanism of torch's CommDebugMode): its payload (the largest tensor it moves: an all-reduce's buffer, an
all-gather's output, a reduce-scatter's input) and the bytes a ring algorithm makes one rank send for it
(all-reduce 2(N-1)/N of the payload, all-gather and reduce-scatter (N-1)/N). Printed per (method, mode): the
median step time over the repeats' steps after the first (`--warmup`), the spread (min-max of the per-repeat
medians), payload and ring bytes per step, and the largest per-rank ledger total.

  .venv/bin/python benchmarks/bench_fsdp.py                                  # smollm2-135m, 2 ranks, 3 methods
  .venv/bin/python benchmarks/bench_fsdp.py --model tiny-llama --repeats 1   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m", help="smollm2-135m (default) or tiny-llama")
    parser.add_argument("--methods", default="full_ft,lisa,owlore", help="comma-separated (full_ft,lisa,owlore)")
    parser.add_argument("--nproc", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each (method, mode), alternating (default 2)")
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per run (default 4)")
    parser.add_argument("--warmup", type=int, default=1, help="first steps of a run left out (default 1)")
    parser.add_argument("--global-batch", type=int, default=4, help="rows per optimizer step, all processes (4)")
    parser.add_argument("--seq-len", type=int, default=64, help="tokens per row (default 64)")
    parser.add_argument("--json", help="also write the raw figures to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: every run, figures to this file
    return parser.parse_args(argv)


def collective_counter():
    """A TorchDispatchMode that adds up, per collective op name, the calls, payload bytes and ring bytes sent."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    ring_share = {"allreduce": lambda n: 2 * (n - 1) / n}  # others: (n - 1) / n

    class CollectiveBytes(TorchDispatchMode):
        def __init__(self, world: int):
            super().__init__()
            self.world, self.calls, self.payload, self.sent = world, Counter(), Counter(), Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            namespace, name = func.namespace, func.__name__.split(".")[0]
            if namespace in ("c10d", "_c10d_functional") and not name.startswith(("wait", "barrier", "monitored")):
                tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
                size = max((t.numel() * t.element_size() for t in tensors), default=0)
                share = next((rule for key, rule in ring_share.items() if key in name.replace("_", "")),
                             lambda n: (n - 1) / n)
                self.calls[name] += 1
                self.payload[name] += size
                self.sent[name] += size * share(self.world)
            return func(*args, **(kwargs or {}))

    return CollectiveBytes


def one_run(args: argparse.Namespace, method_name: str, parallel: str, data, ratios: str, layers: int) -> dict:
    """Train one run on this rank; rank 0's step times, per-step collectives and peak ledger."""
    from owlore_bench.config import TrainConfig
    from owlore_bench.models import load_model
    from owlore_bench.registry import build_method, get_method_class
    from owlore_bench.results import read_jsonl
    from owlore_bench.train import distributed
    from owlore_bench.train.fsdp import shard_model
    from owlore_bench.train.loop import seed_everything, train

    model, _ = load_model(args.model, dtype="fp32", device="cpu")
    fields = get_method_class(method_name).Config.model_fields
    config = {"outlier_ratios_file": ratios} if "outlier_ratios_file" in fields else {}
    if "interval" in fields:  # the layer samplers switch within the run; at most half the layers at a time
        config.update(interval=2, gamma=min(build_method(method_name, {}).config.gamma, layers // 2))
    method = build_method(method_name, config)
    seed_everything(0)
    model = method.prepare(model)
    cfg = TrainConfig(steps=args.steps, batch_size=args.global_batch // distributed.world_size(),
                      max_length=args.seq_len, progress=False, device="cpu", dtype="fp32", seed=0, parallel=parallel)
    if parallel == "fsdp":
        model = shard_model(model, cfg)
    counter = collective_counter()(distributed.world_size())
    per_step: list[dict] = []
    start = method.on_step_start

    def on_step_start(step, model, optimizer):  # snapshot the counts between steps
        per_step.append({"payload": sum(counter.payload.values()), "sent": sum(counter.sent.values()),
                         "calls": dict(counter.calls)})
        return start(step, model, optimizer)

    method.on_step_start = on_step_start
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(distributed.from_main(scratch))
        with counter:
            summary = train(model, method, data, cfg, folder)
        per_step.append({"payload": sum(counter.payload.values()), "sent": sum(counter.sent.values()),
                         "calls": dict(counter.calls)})
        rows = read_jsonl(folder / "metrics.jsonl") if distributed.is_main() else []
        distributed.barrier()
    steps = [{"payload": b["payload"] - a["payload"], "sent": b["sent"] - a["sent"],
              "calls": dict(Counter(b["calls"]) - Counter(a["calls"]))} for a, b in zip(per_step, per_step[1:])]
    return {"method": method_name, "parallel": parallel, "status": summary["status"], "error": summary["error"],
            "step_s": [row["step_s"] for row in rows], "collectives": steps,
            "peak_total_bytes": summary.get("peak_mem_total_bytes")}


def worker(args: argparse.Namespace) -> None:
    import torch
    from bench_ddp import synthetic_examples

    from owlore_bench.models import load_model
    from owlore_bench.train import distributed
    from owlore_bench.train.data import TrainingData

    torch.set_num_threads(1)
    distributed.init_from_env("cpu")
    model, _ = load_model(args.model, dtype="fp32", device="cpu")
    layers, vocab = model.config.num_hidden_layers, model.config.vocab_size
    del model
    data = TrainingData(synthetic_examples(vocab, args.seq_len), 0, seed=0)
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        ratios = Path(distributed.from_main(scratch)) / "equal_ratios.txt"
        if distributed.is_main():
            ratios.write_text("1.0\n" * layers)  # OwLore with equal outlier ratios: no calibration pass
        distributed.barrier()
        for repeat in range(args.repeats):
            for method in args.methods.split(","):
                for parallel in (("replicate", "fsdp") if repeat % 2 == 0 else ("fsdp", "replicate")):
                    runs.append({"repeat": repeat, **one_run(args, method, parallel, data, str(ratios), layers)})
        distributed.barrier()
    if distributed.is_main():
        Path(args.worker).write_text(json.dumps({"processes": distributed.world_size(), "runs": runs}))
    distributed.shutdown()


def summarise(args: argparse.Namespace, figures: dict) -> list[str]:
    lines = [f"{args.model}, global batch {args.global_batch} x {args.seq_len} tokens, {figures['processes']} gloo "
             f"processes x 1 thread, fp32 CPU, {args.steps} steps a run (first {args.warmup} left out), "
             f"{args.repeats} alternating repeat(s)",
             "| method | parallel | step (s), median | per-repeat medians | payload per step (MiB) | ring bytes sent "
             "per rank per step (MiB) | collectives per step | peak ledger total per rank (MiB) |",
             "|---|---|---|---|---|---|---|---|"]
    for method in args.methods.split(","):
        for parallel in ("replicate", "fsdp"):
            runs = [run for run in figures["runs"] if run["method"] == method and run["parallel"] == parallel]
            bad = [run for run in runs if run["status"] != "ok"]
            if bad:
                lines.append(f"| {method} | {parallel} | {bad[0]['status']}: {bad[0]['error']} | | | | | |")
                continue
            kept = [s for run in runs for s in run["step_s"][args.warmup:]]
            medians = [statistics.median(run["step_s"][args.warmup:]) for run in runs]
            steps = [step for run in runs for step in run["collectives"][args.warmup:]]
            payload = statistics.median(step["payload"] for step in steps) / 2**20
            sent = statistics.median(step["sent"] for step in steps) / 2**20
            calls = statistics.median(sum(step["calls"].values()) for step in steps)
            lines.append(f"| {method} | {parallel} | {statistics.median(kept):.3f} | "
                         f"{', '.join(f'{m:.3f}' for m in medians)} | {payload:.1f} | {sent:.1f} | {calls:.0f} | "
                         f"{max(run['peak_total_bytes'] for run in runs) / 2**20:.1f} |")
    return lines


def main() -> None:
    args = parse_args()
    if args.worker:
        worker(args)
        return
    if args.global_batch % args.nproc:
        raise SystemExit(f"--global-batch {args.global_batch} does not split over --nproc {args.nproc}")
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "figures.json"
        own = [a for a in sys.argv[1:] if not a.startswith("--worker")]
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.nproc}",
                   str(Path(__file__).resolve()), *own, "--worker", str(out)]
        done = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},
                              capture_output=True, text=True)
        if done.returncode != 0 or not out.is_file():
            raise SystemExit(f"the benchmark's ranks failed:\n{done.stderr[-3000:]}")
        figures = json.loads(out.read_text())
    print("\n".join(summarise(args, figures)))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), **figures}, indent=2))


if __name__ == "__main__":
    main()
