"""Benchmark: gradient + optimizer-state bytes per step (OwLore freeing vs keep_state) and step time vs full FT.

Plain script (prints measured figures; not a pass/fail test). On smollm2-135m, same data and seed for every run:
  (a) per step, bytes of gradients + optimizer state, split into always-trained modules (embeddings, final norm,
      lm_head) and decoder layers, for owlore with state freeing and with keep_state: true;
  (b) median step time of owlore, lisa and galore relative to full_ft, all measured in this one process.
Settings by environment variable (defaults = the issue's): OWLORE_BENCH_STEPS=200 OWLORE_BENCH_INTERVAL=50
OWLORE_BENCH_BATCH=2 OWLORE_BENCH_SEQ=64 OWLORE_BENCH_THREADS=1
OWLORE_BENCH_RUNS=owlore,owlore_keep_state,lisa,galore,full_ft OWLORE_BENCH_JSON=path (optional raw dump)
  .venv/bin/python benchmarks/bench_owlore_state.py
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from owlore_bench.config import TrainConfig  # noqa: E402
from owlore_bench.memory.ledger import _state_tensors  # noqa: E402
from owlore_bench.models import load_model  # noqa: E402
from owlore_bench.registry import build_method  # noqa: E402
from owlore_bench.results import read_jsonl  # noqa: E402
from owlore_bench.train.data import TrainingData  # noqa: E402
from owlore_bench.train.layers import always_trained_parameters  # noqa: E402
from owlore_bench.train.loop import train  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "alpaca" / "alpaca_gpt4_sample_999.json"
STEPS = int(os.environ.get("OWLORE_BENCH_STEPS", 200))
INTERVAL = int(os.environ.get("OWLORE_BENCH_INTERVAL", 50))
BATCH = int(os.environ.get("OWLORE_BENCH_BATCH", 2))
SEQ = int(os.environ.get("OWLORE_BENCH_SEQ", 64))
THREADS = int(os.environ.get("OWLORE_BENCH_THREADS", 1))  # 1: stable timings on a shared CPU (no OpenMP spin)
RUNS = os.environ.get("OWLORE_BENCH_RUNS", "owlore,owlore_keep_state,lisa,galore,full_ft").split(",")
SAMPLING_RUNS = {"owlore": ("owlore", {}), "owlore_keep_state": ("owlore", {"keep_state": True}),
                 "lisa": ("lisa", {})}


def tensor_bytes(tensors) -> int:
    seen = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
    return sum(seen.values())


def split_bytes(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, int]:
    """Bytes of .grad + optimizer state, for always-trained parameters and for decoder-layer parameters."""
    always = {id(p) for p in always_trained_parameters(model)}
    result = {}
    for part, keep in (("always", lambda p: id(p) in always), ("layers", lambda p: id(p) not in always)):
        params = [p for p in model.parameters() if keep(p)]
        grads = tensor_bytes(p.grad for p in params if p.grad is not None)
        state = tensor_bytes(t for p in params if p in optimizer.state for t in _state_tensors(optimizer.state[p]))
        result[f"{part}_grad_bytes"], result[f"{part}_optimizer_bytes"] = grads, state
    return result


def run_one(label: str, data_path: Path) -> dict:
    name, overrides = SAMPLING_RUNS.get(label, (label, {}))
    if name in ("owlore", "lisa"):
        overrides = {**overrides, "interval": INTERVAL}
    method = build_method(name, overrides)
    model, tokenizer = load_model("smollm2-135m", dtype="fp32", device="cpu")
    data = TrainingData.from_file(data_path, tokenizer, SEQ, "plain", seed=0)
    model = method.prepare(model)
    series: list[dict[str, int]] = []
    build = method.build_optimizer

    def build_with_probe(model, lr, weight_decay):  # measure right after each optimizer step (grads still set)
        optimizer = build(model, lr=lr, weight_decay=weight_decay)
        optimizer.register_step_post_hook(lambda opt, args, kwargs: series.append(split_bytes(model, opt)))
        return optimizer

    method.build_optimizer = build_with_probe
    cfg = TrainConfig(steps=STEPS, batch_size=BATCH, max_length=SEQ, lr=3e-4, seed=0, memory_profile=False,
                      progress=False, dtype="fp32", device="cpu")
    with tempfile.TemporaryDirectory() as out:
        summary = train(model, method, data, cfg, out)
        rows = read_jsonl(Path(out) / "metrics.jsonl")
    step_s = [row["step_s"] for row in rows if "step_s" in row]
    return {"label": label, "status": summary["status"], "final_loss": summary["final_loss"],
            "median_step_s": statistics.median(step_s), "mean_step_s": statistics.mean(step_s),
            "active_layers": [row.get("active_layers") for row in rows], "series": series}


def print_memory(results: dict[str, dict]) -> None:
    mib = 2**20
    for label in ("owlore", "owlore_keep_state"):
        if label not in results:
            continue
        series = results[label]["series"]
        print(f"\n(a) {label}: grad+optimizer bytes per step (MiB), always-trained | decoder layers")
        for step in list(range(0, len(series), max(1, INTERVAL // 2))) + [len(series) - 1]:
            row = series[step]
            always = row["always_grad_bytes"] + row["always_optimizer_bytes"]
            layers = row["layers_grad_bytes"] + row["layers_optimizer_bytes"]
            print(f"  step {step:4d}  active {results[label]['active_layers'][step]}  always {always / mib:8.2f}  "
                  f"layers {layers / mib:8.2f}")
    if "owlore" in results and "owlore_keep_state" in results:
        end = [results[k]["series"][-1] for k in ("owlore", "owlore_keep_state")]
        layer_bytes = [r["layers_grad_bytes"] + r["layers_optimizer_bytes"] for r in end]
        distinct = len({i for a in results["owlore_keep_state"]["active_layers"] for i in a})
        print(f"  end: decoder-layer grad+state keep_state / freeing = {layer_bytes[1] / layer_bytes[0]:.2f}x "
              f"({distinct} distinct layers ever sampled)")


def main() -> int:
    if not DATA.is_file():
        print(f"skipped: benchmark data {DATA} not found (needs ../shared/data)")
        return 0
    torch.set_num_threads(THREADS)
    print(f"smollm2-135m, {STEPS} steps, K={INTERVAL}, batch {BATCH} x {SEQ} tokens, fp32 CPU ({THREADS} thread(s)), "
          f"seed 0")
    results = {}
    for label in RUNS:
        results[label] = run_one(label, DATA)
        r = results[label]
        print(f"{label}: status {r['status']}, final loss {r['final_loss']:.4f}, "
              f"median step {r['median_step_s']:.3f} s,"
              f" mean {r['mean_step_s']:.3f} s", flush=True)
    print_memory(results)
    if "full_ft" in results:
        base = results["full_ft"]["median_step_s"]
        print("\n(b) median step time relative to full_ft (same process):")
        for label, r in results.items():
            print(f"  {label:18s} {r['median_step_s']:.3f} s  {r['median_step_s'] / base:.2f}x")
    out = os.environ.get("OWLORE_BENCH_JSON")
    if out:
        Path(out).write_text(json.dumps({k: {**v} for k, v in results.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
