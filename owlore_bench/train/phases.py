"""Where a training step's time goes: seconds per phase (forward, backward, update), for `train.time_phases`.

The loop's step_s spans batch → zero_grad. With phase timing on, each metrics row also gets
    forward_s   model(**batch) and the loss, summed over micro-batches
    backward_s  loss.backward(), summed over micro-batches (with update_in_backward the updates run in here)
    update_s    gradient clipping + optimizer.step() + LR schedule + zero_grad
and step_s − their sum is the rest (batching, the ledger's bookkeeping, the all-reduce of gradients).

Why they matter: a layer-sampling method can only save backward's weight-gradient work and the optimizer, so
(forward_s + backward_s) of a method over full FT's step_s is the fastest that method's step can be with a free
optimizer: its measured floor. CUDA runs asynchronously, so timing a phase needs a synchronize at each
boundary; that costs the CPU/GPU overlap of launching the next phase, which is why timing is off by default.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

PHASES = ("forward", "backward", "update")


class PhaseTimer:
    """Seconds per phase of the current step; a no-op (no clock reads, no synchronize) when disabled."""

    def __init__(self, device: torch.device, enabled: bool):
        self.device, self.enabled = device, enabled
        self.seconds = dict.fromkeys(PHASES, 0.0)

    def begin_step(self) -> None:
        self.seconds = dict.fromkeys(PHASES, 0.0)

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # queued kernels belong to the phase that launched them
        return time.perf_counter()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Adds the time spent inside the block to `name` (one of PHASES)."""
        if not self.enabled:
            yield
            return
        started = self._now()
        try:
            yield
        finally:
            self.seconds[name] += self._now() - started

    def row(self) -> dict[str, float]:
        """{'forward_s': …, 'backward_s': …, 'update_s': …} for this step's metrics row; {} when disabled."""
        return {f"{name}_s": value for name, value in self.seconds.items()} if self.enabled else {}
