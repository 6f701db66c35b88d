"""train.update_in_backward: every parameter is updated inside backward the moment its gradient is complete, and
that gradient is freed at once, so the gradients of a step are never all held together.

This is galore-torch's layer-wise mode (torchtune's `optimizer_in_bwd`) as one seam for every method: a
`register_post_accumulate_grad_hook` on each parameter the optimizer holds runs the METHOD'S OWN optimizer for
that parameter. galore-torch's example builds one optimizer per parameter instead; calling the one optimizer
while exactly one `.grad` exists is the same update (AdamW and GaLoreAdamW skip parameters whose .grad is
None, and their state, step counts and GaLore projectors are per parameter) and keeps everything else as it
is: one param_groups list for the LR schedule, one state dict for checkpoints, for the ledger and for layer
sampling, which frees the state of leaving layers as usual. A frozen (unsampled) layer never gets a gradient,
so its hooks never fire: updates happen only on the active layers.

Not compatible, by nature: gradient accumulation (an update before the last micro-batch), global-norm clipping
(it needs every gradient at once), and data parallel averaging (it happens after backward). check_supported
names the setting to drop.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch

from owlore_bench.errors import UserError
from owlore_bench.train import distributed
from owlore_bench.train.fsdp import check_fsdp, uses_fsdp


def check_supported(method: Any, train: Any, world_size: int = 1) -> None:
    """One line naming the setting to drop when update_in_backward cannot work with this run (and, first, when the
    method refuses data parallel on `world_size` processes: both are checked before any training)."""
    distributed.check_data_parallel(method, world_size)
    check_fsdp(method, train)
    if not train.update_in_backward:
        if getattr(method, "fused_by_design", None):
            warnings.warn(f"method '{method.name}': {method.fused_by_design}", stacklevel=2)
        return
    reason = getattr(method, "no_update_in_backward", None)
    if reason:
        raise UserError(f"train.update_in_backward: not offered for method '{method.name}' ({reason}); "
                        f"drop update_in_backward or choose another method")
    if train.grad_accum > 1:
        raise UserError(f"train.update_in_backward: cannot accumulate gradients (grad_accum: {train.grad_accum}) "
                        f"when each update runs inside backward; set grad_accum: 1 or drop update_in_backward")
    if train.grad_clip > 0:
        raise UserError(f"train.update_in_backward: global-norm clipping (grad_clip: {train.grad_clip}) needs every "
                        f"gradient at once; set grad_clip: 0 or drop update_in_backward")
    if world_size > 1 and not uses_fsdp(train):  # FSDP reduce-scatters each layer inside backward, hooks after
        raise UserError(f"train.update_in_backward: gradients are averaged over the {world_size} ranks after "
                        f"backward; drop update_in_backward or shard with --parallel fsdp (which reduces each "
                        f"layer's gradients inside backward) to train on more than one process")


class StepInBackward:
    """Hooks that run `optimizer.step()` for one parameter as soon as its gradient is accumulated, then free it.

    torch allows a hook only on a tensor that requires grad, so the hooks follow the trainable set: call
    refresh() after anything that freezes or unfreezes parameters (the loop does, after on_step_start; a layer
    switch then moves the hooks to the new active layers). `on_gradient(param)` is called inside each hook before the
    gradient is freed (the memory ledger reads the live gradients there). Use as a context manager, or call
    remove().
    """

    def __init__(self, optimizer: torch.optim.Optimizer,
                 on_gradient: Callable[[torch.nn.Parameter], None] | None = None):
        self.optimizer = optimizer
        self.on_gradient = on_gradient
        self.params = [param for group in optimizer.param_groups for param in group["params"]]
        self.group_index = {id(param): index for index, group in enumerate(optimizer.param_groups)
                            for param in group["params"]}
        self.handles: dict[int, Any] = {}
        self.refresh()

    def refresh(self) -> None:
        """Hook every trainable parameter of the optimizer; unhook the frozen ones."""
        for param in self.params:
            hooked = id(param) in self.handles
            if param.requires_grad and not hooked:
                self.handles[id(param)] = param.register_post_accumulate_grad_hook(self._update)
            elif hooked and not param.requires_grad:
                self.handles.pop(id(param)).remove()

    def _update(self, param: torch.nn.Parameter) -> None:
        if self.on_gradient is not None:
            self.on_gradient(param)
        # The optimizer steps over a view holding this one parameter in (a copy of) its live group: the same
        # update as a full optimizer.step() while only `param` has a .grad, but O(1) instead of walking every
        # parameter, which made a step O(N²) in the parameter count (benchmarks/bench_in_backward_scaling.py).
        groups = self.optimizer.param_groups
        self.optimizer.param_groups = [{**groups[self.group_index[id(param)]], "params": [param]}]
        try:
            self.optimizer.step()
        finally:
            self.optimizer.param_groups = groups
        param.grad = None

    def remove(self) -> None:
        for handle in self.handles.values():
            handle.remove()
        self.handles = {}

    def __enter__(self) -> StepInBackward:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()
