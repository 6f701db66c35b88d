"""Overhead of THE training loop against a bare PyTorch loop doing the same work.

Same model, same batches, same AdamW, same clipping; the loop adds metrics lines, the schedule and the method
hooks (target: within 5%), and, in a second timing, the memory ledger (target: at most 3% more). Prints the
median step time of each and the ratios to the bare loop (measured before and after, averaged).

    .venv/bin/python -m pytest benchmarks/bench_loop.py -s          # tiny-llama and smollm2-135m
    BENCH_LOOP_STEPS=20 .venv/bin/python -m pytest benchmarks/bench_loop.py -s
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import pytest
import torch

from owlore_bench.config import TrainConfig
from owlore_bench.datasets.records import read_records
from owlore_bench.models import load_model
from owlore_bench.registry import build_method
from owlore_bench.results import read_jsonl
from owlore_bench.train.data import TrainingData
from owlore_bench.train.loop import seed_everything, train

STEPS = int(os.environ.get("BENCH_LOOP_STEPS", "12"))
WARMUP = 2
DATA = "bigbench:default"  # the quickstart's training data (short prompts, as in the quickstart)


def bare_step_times(model, data: TrainingData, cfg: TrainConfig) -> list[float]:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    times = []
    for step in range(cfg.steps):
        started = time.perf_counter()
        batch = data.batch(step, cfg.batch_size)
        loss = model(**batch).loss
        loss.backward()
        loss.item()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - started)
    return times


def loop_step_times(model, data: TrainingData, cfg: TrainConfig) -> list[float]:
    return _timed_loop(model, data, cfg)


def profiled_loop_step_times(model, data: TrainingData, cfg: TrainConfig) -> list[float]:
    """The loop with the memory ledger on (its default): the ledger's cost is the difference to loop_step_times."""
    return _timed_loop(model, data, cfg.model_copy(update={"memory_profile": True}))


def _timed_loop(model, data: TrainingData, cfg: TrainConfig) -> list[float]:
    method = build_method("full_ft")
    model = method.prepare(model)
    with tempfile.TemporaryDirectory() as out:
        train(model, method, data, cfg, out)
        return [row["step_s"] for row in read_jsonl(Path(out) / "metrics.jsonl")]


@pytest.mark.parametrize("model_name,batch_size,max_length", [("tiny-llama", 8, 256), ("smollm2-135m", 8, 96)])
def test_loop_overhead_against_a_bare_pytorch_loop(model_name, batch_size, max_length):
    cfg = TrainConfig(steps=STEPS, batch_size=batch_size, max_length=max_length, lr=1e-5, schedule="constant",
                      memory_profile=False, progress=False)
    medians = {}
    timers = (("bare", bare_step_times), ("loop", loop_step_times), ("loop_ledger", profiled_loop_step_times),
              ("bare_again", bare_step_times))
    for kind, timer in timers:
        model, tokenizer = load_model(model_name, dtype="fp32", device="cpu")
        data = TrainingData.from_records(read_records(DATA, limit=256), tokenizer, max_length, "plain")
        seed_everything(0)
        medians[kind] = statistics.median(timer(model, data, cfg)[WARMUP:])
    bare = (medians["bare"] + medians["bare_again"]) / 2  # before and after the loop: drift on a shared CPU
    print(f"\n[bench_loop] {model_name} batch {batch_size} x <= {max_length} tokens, "
          f"{torch.get_num_threads()} threads, "
          f"median of {STEPS - WARMUP} steps: bare {bare * 1000:.1f} ms "
          f"(runs {medians['bare'] * 1000:.1f} / {medians['bare_again'] * 1000:.1f}), "
          f"loop {medians['loop'] * 1000:.1f} ms, ratio loop/bare = {medians['loop'] / bare:.3f}; with the memory "
          f"ledger {medians['loop_ledger'] * 1000:.1f} ms, ratio {medians['loop_ledger'] / bare:.3f}")
