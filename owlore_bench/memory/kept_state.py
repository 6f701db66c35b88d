"""The optimizer state a layer-sampling method holds at the end of a run when it keeps the state of layers that
leave the active set (`keep_state: true`, the official LISA / OwLore rule; LMFlow #768): the estimator's step 0
shows the state of the first active layers only, the run ends holding the state of every layer it ever trained.

The method's own on_step_start is replayed for the run's steps, so its seeded sampler draws what the run draws,
and each parameter that becomes trainable gets its state from one fake optimizer step, as its first real step
gives it (GaLore's moments and projectors come out as its optimizer makes them). kept_state_lines are what
`owlore-bench memory --steps` prints of it.
"""

from __future__ import annotations

import torch

from owlore_bench.memory.ledger import optimizer_bytes


def kept_state_bytes(model, method, optimizer, fake_mode, steps: int | None) -> int:
    """Optimizer state bytes after `steps` steps of a method that never frees state (after estimate's step 0).

    on_step_start is replayed for steps 1..steps−1, outside the fake mode as in the loop, so a sampler draws the
    run's layers; a parameter the optimizer holds that is trainable and has no state yet gets it from one fake
    step, as its first real step would give it. steps=None: every parameter the optimizer holds gets state.
    """
    held = [p for group in optimizer.param_groups for p in group["params"]]
    for param in held:
        param.grad = None  # step 0's gradients: only parameters without state take the next fake steps
    if steps is None:
        _give_state(optimizer, held, fake_mode)
    for step in range(1, steps or 0):
        method.on_step_start(step, model, optimizer)
        _give_state(optimizer, [p for p in held if p.requires_grad and p not in optimizer.state], fake_mode)
    with fake_mode:
        return optimizer_bytes(optimizer)


def _give_state(optimizer, params: list[torch.nn.Parameter], fake_mode) -> None:
    """One fake optimizer step over `params` alone (zero gradients): the state their first step creates."""
    if not params:
        return
    with fake_mode:
        for param in params:
            param.grad = torch.zeros_like(param)
        optimizer.step()
    for param in params:
        param.grad = None
