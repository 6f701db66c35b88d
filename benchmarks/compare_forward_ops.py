"""Does the suite's full-FT forward pass do work that the official design's does not? An op diff and a paired A/B.

Op diff (always): for each size, each side's real full_ft run (bench_vs_reference.run_suite / run_official_side:
a fresh model, the same packed batches) with torch.profiler on for exactly ONE span, the forward phase of step
--warmup. Both sides time their forward with PhaseTimer.phase("forward") and enter the memory ledger's forward()
(its saved-tensor hooks) inside it, so this script wraps PhaseTimer.phase, in this process only, to start and
stop the profiler there. Every op of the span is listed with its input shapes and call count
(key_averages(group_by_input_shape=True)), the two sides side by side; a key that differs is the extra work.
With the memory ledger on and off (--ledger; --no-ledger means --ledger off).

Paired A/B (--ab N): ONE model, ONE batch (batch 0), N alternating pairs of forward phases, the order swapped
every pair: the suite's step as train() runs it (loop._set_up, then _forward_backward) and the official one as
run_official runs it (OfficialTrainer.train_step), each stopped where its backward phase would begin (entering
PhaseTimer.phase("backward") raises), so the forward is each side's own code and nothing is updated: every
forward sees the same weights. Reported: each pair's suite / official ratio of the forward phase (the side's
own PhaseTimer seconds), their median, a 95 % bootstrap interval of that median over the pairs, a two-sided
sign test, and the load average before and after. The memory ledger is off on both sides here: its pack hook
keeps each saved tensor itself, so a saved OUTPUT (log_softmax's, for one) holds its own grad_fn, a cycle
through C++ that no gc breaks unless backward runs (pytorch/pytorch#189025); forwards without backward would
pile up their activations (~3 GB each at 8x256). The op diff shows what the ledger adds to the forward.

    .venv/bin/python benchmarks/compare_forward_ops.py --model tiny-llama --sizes 2x16 --ab 4   # smoke, seconds
    nice -n 5 .venv/bin/python benchmarks/compare_forward_ops.py --sizes 2x64,8x256 --ab 10 \\
        --out results/benchmarks/forward_ops.md
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import math
import os
import shlex
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_vs_reference import (
    HelpFormatter,
    add_setting_arguments,
    comma_list,
    data_for,
    implementations,
    parse_size,
    prepare_inputs,
    run_official_side,
    run_suite,
    settings_for,
)
from official_owlore import OfficialTrainer

from owlore_bench.config import TrainConfig
from owlore_bench.errors import UserError
from owlore_bench.memory.ledger import MemoryLedger
from owlore_bench.models import load_model
from owlore_bench.registry import build_method
from owlore_bench.results import provenance
from owlore_bench.train import loop
from owlore_bench.train.phases import PhaseTimer

SIDES = ("suite", "official")
OpKey = tuple[str, str]  # (op name, its input shapes as text)


@contextlib.contextmanager
def profiled_forward(step: int) -> Any:
    """While open, the forward phase of iteration `step` of a run (counted by the `on_iteration` callback this
    yields) runs under torch.profiler with shapes recorded; `holder["profiler"]` is that stopped profiler."""
    original, holder = PhaseTimer.phase, {"iteration": -1, "profiler": None}

    @contextlib.contextmanager
    def phase(timer: PhaseTimer, name: str) -> Any:
        if name != "forward" or holder["iteration"] != step:
            with original(timer, name):
                yield
            return
        profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True)
        with profiler, original(timer, name):
            yield
        holder["profiler"] = profiler

    def on_iteration(iteration: int) -> None:
        holder["iteration"] = iteration

    PhaseTimer.phase = phase
    try:
        yield on_iteration, holder
    finally:
        PhaseTimer.phase = original


def forward_ops(args: argparse.Namespace, side: str, size: tuple[int, int], inputs: dict) -> dict[OpKey, tuple]:
    """{(op, input shapes): (calls, self CPU s)} of the forward phase of step --warmup of `side`'s real run."""
    impl = next(i for i in implementations(args.grad_clip, False) if i.label == side)
    settings = settings_for("full_ft", args, impl.grad_clip)
    data, _ = data_for(args, inputs, size)
    with profiled_forward(args.warmup) as (on_iteration, holder):
        if side == "suite":
            status, _ = run_suite(args, "full_ft", impl, settings, size, args.warmup + 1, data, None,
                                  on_iteration=on_iteration)
        else:
            status, _ = run_official_side(args, "full_ft", settings, size, args.warmup + 1, data, None,
                                          on_iteration=on_iteration)
    if status != "ok" or holder["profiler"] is None:
        raise UserError(f"the profiled {side} run ended with status {status}")
    return {(e.key, str(e.input_shapes)): (e.count, e.self_cpu_time_total / 1e6)
            for e in holder["profiler"].key_averages(group_by_input_shape=True)}


def op_table(ops: dict[str, dict[OpKey, tuple]]) -> tuple[list[str], list[OpKey]]:
    """(markdown table of every op key with both sides' calls and self CPU s, the keys whose calls differ)."""
    keys = sorted(set(ops["suite"]) | set(ops["official"]), key=lambda k: (-ops["suite"].get(k, (0, 0))[1], k))
    lines = ["| op | input shapes | suite calls | official calls | suite self CPU s | official self CPU s |",
             "|---|---|---|---|---|---|"]
    differ = []
    for key in keys:
        (sc, st), (oc, ot) = ops["suite"].get(key, (0, 0.0)), ops["official"].get(key, (0, 0.0))
        if sc != oc:
            differ.append(key)
        lines.append(f"| {key[0]} | `{key[1]}` | {sc} | {oc} | {st:.4f} | {ot:.4f} |")
    return lines, differ


def diff_section(args: argparse.Namespace, size: tuple[int, int], ledger: bool, inputs: dict) -> list[str]:
    """The markdown of one size × ledger setting: the summary, the differing keys, the full table."""
    args.no_ledger = not ledger
    ops = {side: forward_ops(args, side, size, inputs) for side in SIDES}
    table, differ = op_table(ops)
    totals = {side: (sum(c for c, _ in ops[side].values()), sum(t for _, t in ops[side].values())) for side in SIDES}
    lines = [f"### {size[0]}x{size[1]}, memory ledger {'on' if ledger else 'off'}", "",
             *(f"- {side}: {len(ops[side])} distinct (op, shapes), {totals[side][0]} calls, "
               f"{totals[side][1]:.3f} s self CPU under the profiler" for side in SIDES),
             f"- keys whose call counts differ: {len(differ)}"
             + "".join(f"\n  - {op} `{shapes}`: suite {ops['suite'].get((op, shapes), (0,))[0]}, official "
                       f"{ops['official'].get((op, shapes), (0,))[0]}" for op, shapes in differ), ""]
    return lines + ["<details><summary>every op of the span, both sides</summary>", "", *table, "", "</details>", ""]


class ForwardDone(Exception):
    """Raised where a step's backward phase would begin: the A/B runs each side's real step up to there."""


@contextlib.contextmanager
def forwards_only() -> Any:
    """While open, entering PhaseTimer.phase("backward") raises ForwardDone (the forward phase has ended)."""
    original = PhaseTimer.phase

    @contextlib.contextmanager
    def phase(timer: PhaseTimer, name: str) -> Any:
        if name == "backward":
            raise ForwardDone
        with original(timer, name):
            yield

    PhaseTimer.phase = phase
    try:
        yield
    finally:
        PhaseTimer.phase = original


class SuiteForward:
    """The suite's step as owlore_bench.train.loop.train runs it (its _set_up and _forward_backward), to its
    backward."""

    def __init__(self, args: argparse.Namespace, model: torch.nn.Module, size: tuple[int, int], data: Any,
                 folder: str):
        settings = settings_for("full_ft", args, args.grad_clip)
        self.method = build_method("full_ft", {})
        self.model, self.data = self.method.prepare(model), data
        self.cfg = TrainConfig(steps=1, batch_size=size[0], max_length=size[1], lr=settings.lr, weight_decay=0.0,
                               schedule="constant", grad_clip=settings.grad_clip, dtype="fp32", device="cpu",
                               seed=settings.seed, memory_profile=not args.no_ledger, time_phases=True,
                               progress=False)
        self.run = loop._set_up(self.model, self.method, self.cfg, Path(folder))

    def forward_s(self) -> float:
        self.run.ledger.begin_step()
        self.run.phases.begin_step()
        with contextlib.suppress(ForwardDone):
            loop._forward_backward(self.model, self.data, self.cfg, self.run, 0, torch.device("cpu"))
        return self.run.phases.row()["forward_s"]


class OfficialForward:
    """The official step as run_official runs it (OfficialTrainer.train_step on batch 0), to its backward."""

    def __init__(self, args: argparse.Namespace, model: torch.nn.Module, size: tuple[int, int], data: Any):
        self.trainer = OfficialTrainer("full_ft", model, settings_for("full_ft", args, args.grad_clip))
        self.ledger = MemoryLedger(model, self.trainer.optimizer, enabled=not args.no_ledger)
        self.phases = PhaseTimer(torch.device("cpu"), enabled=True)
        self.data, self.rows = data, size[0]

    def forward_s(self) -> float:
        self.ledger.begin_step()
        self.phases.begin_step()
        with contextlib.suppress(ForwardDone):
            self.trainer.train_step(self.data.batch(0, self.rows), self.ledger, self.phases)
        return self.phases.row()["forward_s"]


def interval(ratios: list[float], seed: int = 0, resamples: int = 10_000) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the median of `ratios` (pairs resampled with replacement)."""
    draws = np.random.default_rng(seed).choice(np.asarray(ratios), (resamples, len(ratios)), replace=True)
    low, high = np.percentile(np.median(draws, axis=1), [2.5, 97.5])
    return float(low), float(high)


def sign_test(above: int, below: int) -> float:
    """Two-sided sign-test p-value for `above` ratios > 1 against `below` < 1 (ties dropped)."""
    n = above + below
    return min(1.0, 2 * sum(math.comb(n, k) for k in range(min(above, below) + 1)) / 2**n) if n else 1.0


def ab_section(args: argparse.Namespace, size: tuple[int, int], inputs: dict) -> list[str]:
    """N alternating pairs of forward phases on one model and one batch; the markdown of the paired ratios."""
    args.no_ledger = True  # with it on, graphs never backwarded would not be freed (see the module docstring)
    data, _ = data_for(args, inputs, size)
    model, _ = load_model(args.model, dtype="fp32", device="cpu")
    before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="owlore-forward-ab-") as folder, forwards_only():
        sides = {"suite": SuiteForward(args, model, size, data, folder),
                 "official": OfficialForward(args, model, size, data)}
        for side in SIDES:
            sides[side].forward_s()  # warm-up: allocator pages and caches exist before timing starts
        pairs = []
        for pair in range(args.ab):
            order = SIDES if pair % 2 == 0 else SIDES[::-1]
            pairs.append({side: sides[side].forward_s() for side in order})
            print(f"[pair {pair + 1}/{args.ab}] forward suite {pairs[-1]['suite']:.3f} s, official "
                  f"{pairs[-1]['official']:.3f} s", file=sys.stderr, flush=True)
        sides["suite"].run.metrics.close()
    after = os.getloadavg()
    ratios = [p["suite"] / p["official"] for p in pairs]
    low, high = interval(ratios, args.seed)
    above, below = sum(r > 1 for r in ratios), sum(r < 1 for r in ratios)
    return [f"## Paired A/B: {args.ab} alternating pairs of forward phases, {size[0]}x{size[1]}, one model, batch 0, "
            "memory ledger off on both sides", "",
            f"- load average (1/5/15 min): before {', '.join(f'{x:.2f}' for x in before)}, after "
            f"{', '.join(f'{x:.2f}' for x in after)}",
            f"- forward s, median: suite {statistics.median(p['suite'] for p in pairs):.3f}, official "
            f"{statistics.median(p['official'] for p in pairs):.3f}",
            f"- suite / official per pair: median **{statistics.median(ratios):.3f}**, 95 % bootstrap interval of "
            f"the median {low:.3f}–{high:.3f}; suite slower in {above} pairs, faster in {below} (two-sided sign "
            f"test p = {sign_test(above, below):.3f})",
            "- forward s per pair (suite, official; odd pairs ran the official side first): "
            + "; ".join(f"{p['suite']:.2f}, {p['official']:.2f}" for p in pairs), ""]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    add_setting_arguments(parser)
    parser.add_argument("--sizes", type=comma_list(parse_size), default=[(2, 64), (8, 256)],
                        help="comma-separated BATCHxTOKENS cases of the op diff; the A/B runs the last")
    parser.add_argument("--warmup", type=int, default=1, help="unprofiled steps before the profiled forward")
    parser.add_argument("--ledger", choices=("both", "on", "off"), default="both", help="memory ledger in the op diff")
    parser.add_argument("--ab", type=int, default=0, help="alternating pairs of the A/B (0: op diff only)")
    parser.add_argument("--out", default=None, help="also write the markdown report here")
    args = parser.parse_args(argv)
    args.methods = ["full_ft"]
    if args.no_ledger:
        args.ledger = "off"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    git = provenance()["git"]
    lines = [f"# Forward-pass ops, suite vs official full_ft ({datetime.date.today().isoformat()})", "",
             f"Command: `{shlex.join([sys.executable, *sys.argv])}`", "",
             f"- date {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}; git {git['commit']}"
             f"{' (dirty)' if git['dirty'] else ''}; torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
             f"model {args.model} fp32 CPU; load average before {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
             f"- op diff: the forward phase of step {args.warmup} (after {args.warmup} unprofiled) of a fresh run per "
             f"side; self CPU s are under the profiler (inflated), the calls and shapes are what counts", ""]
    try:
        if args.warmup < 0:
            raise UserError(f"--warmup: {args.warmup} must be >= 0 steps")
        if args.ab and args.ab < 2:
            raise UserError(f"--ab: {args.ab} pairs cannot give an interval; use 2 or more (10+ to beat drift)")
        largest = max(b * t for b, t in args.sizes)
        with tempfile.TemporaryDirectory(prefix="owlore-forward-ops-") as folder:
            inputs = prepare_inputs(args, Path(folder), needed_tokens=(args.warmup + 1) * largest)
        for ledger in {"both": [True, False], "on": [True], "off": [False]}[args.ledger]:
            for size in args.sizes:
                lines += diff_section(args, size, ledger, inputs)
        if args.ab:
            lines += ab_section(args, args.sizes[-1], inputs)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report = "\n".join(lines)
    print(report)
    if args.out:
        Path(args.out).write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
