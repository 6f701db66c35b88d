"""update_in_backward's cost against the parameter count: a model of N tiny parameters, one step in backward.

A step runs one hook per parameter. If each hook walks every parameter (an optimizer.step() over all param
groups, a ledger sum over every .grad) the step grows as N²; updating only the hooked parameter keeps it ~N.
Prints seconds per step and per parameter for each N, with and without the memory ledger; the per-parameter
column stays flat when the cost is linear.

    .venv/bin/python benchmarks/bench_in_backward_scaling.py            # N = 500, 1000, 2000, 4000
    .venv/bin/python benchmarks/bench_in_backward_scaling.py 1000 8000
"""

from __future__ import annotations

import statistics
import sys
import time

import torch

from owlore_bench.memory.ledger import MemoryLedger
from owlore_bench.train.step_in_backward import StepInBackward


class ManySmallParameters(torch.nn.Module):
    """x · (1 + Σ_i w_i) with N scalar-vector parameters of 4 numbers each: thousands of parameters, tiny math."""

    def __init__(self, count: int):
        super().__init__()
        self.weights = torch.nn.ParameterList(torch.nn.Parameter(torch.randn(4) * 0.01) for _ in range(count))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * (1 + torch.stack(list(self.weights)).sum(0))).pow(2).mean()


def seconds_per_step(count: int, ledger_on: bool, steps: int = 5) -> float:
    torch.manual_seed(0)
    model = ManySmallParameters(count)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ledger = MemoryLedger(model, optimizer, enabled=ledger_on)
    times = []
    with StepInBackward(optimizer, on_gradient=ledger.after_gradient):
        for _ in range(steps + 1):  # the first step creates the optimizer state: not timed
            started = time.perf_counter()
            ledger.begin_step()
            model(torch.randn(8, 4)).backward()
            ledger.end_step()
            times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def main(counts: list[int]) -> None:
    torch.set_num_threads(1)
    print(f"{'parameters':>10}  {'s/step':>8}  {'µs/param':>9}  {'s/step +ledger':>14}  {'µs/param +ledger':>16}")
    for count in counts:
        plain, with_ledger = seconds_per_step(count, False), seconds_per_step(count, True)
        print(f"{count:>10}  {plain:>8.3f}  {1e6 * plain / count:>9.1f}  {with_ledger:>14.3f}  "
              f"{1e6 * with_ledger / count:>16.1f}")


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [500, 1000, 2000, 4000])
