"""LOMO and AdaLomo (lomo-optim 0.1.1, the authors' package): the update fused into backward, no optimizer state
(LOMO: SGD) or a factored second moment (AdaLomo: one row and one column vector per matrix, as Adafactor).

The fusion IS train.update_in_backward (owlore_bench/train/step_in_backward.py): run them with
`train.update_in_backward: true` (and `train.grad_clip: 0`) to get their memory, every gradient freed the moment
it is used. Without it the loop warns and runs the very same update after backward, holding every gradient, so
that train.grad_clip then clips by the global norm exactly as the package's clip_grad_norm does (its second
backward pass computes clip = max_norm / (norm + 1e-6), capped at 1, the formula of torch's clip_grad_norm_).

Why not the package's own `fused_backward(loss, lr)`: its constructor hooks every parameter (`register_hook`,
no handle kept, so they cannot be removed) and each hook walks ALL parameters to find the one whose .grad is set
(O(N²) a step), with a last walk after backward; it would be a second in-backward mechanism beside the suite's.
FusedUpdate below instead gives the package optimizer a view of exactly one parameter and calls its own update
function (`grad_func`, the body of those hooks) from the suite's hook: the same arithmetic, O(1) per parameter.
The package is built over an empty view, so it registers no hook. Two more departures, both without effect on
the numbers: AdaLomo's `loss_scale` (it multiplies the loss by 2^10 and divides each gradient by it, exact in
bf16/fp32 for a power of two) is off, because the suite's loop does not scale the loss; and AdaLomo's state is
created on the parameter's device (the package calls `.cuda()`, which a CPU run cannot) in `optimizer.state`,
where the checkpoint and the memory ledger see it. Data parallel: without update_in_backward the gradients are
averaged before the step, which is sound; the fused update under `--nproc N` is refused by update_in_backward's
own check (averaging happens after backward) unless the run is sharded: under `train.parallel: fsdp` each layer's
gradients are reduce-scattered inside backward before the hook runs, so LOMO's fused update works sharded (tested
against one process in tests/test_fsdp_zoo.py). AdaLomo is refused under FSDP (its row/column state is plain).

Defaults: the package's (Lomo: no value clipping; AdaLomo: eps (1e-30, 1e-3), clip_threshold 1.0, decay_rate -0.8;
the papers use the same), the learning rate and weight decay are the run's train.lr / train.weight_decay.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch._subclasses.fake_tensor import is_fake

from owlore_bench import MethodConfig, register_method
from owlore_bench.method import import_reference
from owlore_bench.methods.full_ft import FullFineTuning

FUSED_DESIGN = ("its update is fused into backward by design: set train.update_in_backward: true and "
                "train.grad_clip: 0 for its memory; without them every gradient is held until the step")


class _Selected:
    """What the package's update function walks (`model.named_parameters()`): the parameters selected now."""

    def __init__(self, params: list[torch.nn.Parameter]):
        self.params = params
        self.selected: list[tuple[str, torch.nn.Parameter]] = []

    def named_parameters(self):
        return iter(self.selected)

    def parameters(self):
        return iter(self.params)


class FusedUpdate(torch.optim.Optimizer):
    """A torch optimizer around a lomo-optim optimizer: step() updates each parameter that holds a .grad, one at
    a time, with the package's own update function, and frees that gradient (the package does)."""

    def __init__(self, named: list[tuple[str, torch.nn.Parameter]], package_class: type, lr: float,
                 weight_decay: float, **options: Any):
        params = [param for _, param in named]
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})
        self.names = {id(param): name for name, param in named}
        self.view = _Selected(params)
        self.fused = package_class(self.view, lr=lr, weight_decay=weight_decay, **options)
        self.factored = hasattr(self.fused, "exp_avg_sq_row")  # AdaLomo

    def begin_step(self, step: int) -> None:
        """Before optimizer step `step` (0-based): AdaLomo's step count, which its fused_backward advances."""
        self.fused.step_num = step + 1

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    self._update(param, group)

    def _update(self, param: torch.nn.Parameter, group: dict[str, Any]) -> None:
        name = self.names[id(param)]
        self.fused.lr, self.fused.weight_decay = group["lr"], group["weight_decay"]  # the LR schedule's value
        self.fused.do_weight_decay = group["weight_decay"] > 0.0
        if self.factored:
            self._bind_factored_state(name, param)
            if is_fake(param):
                # The estimator's fake tensors: AdaLomo's update compares the parameter's RMS with eps[1] in Python
                # (max(eps, rms)), which needs a real value. Its state exists by now and the update leaves no
                # memory behind, so freeing the gradient is all that changes the ledger.
                param.grad = None
                return
        self.view.selected = [(name, param)]
        try:
            self.fused.grad_func(0)  # the package's update of every selected parameter with a .grad
        finally:
            self.view.selected = []

    def _bind_factored_state(self, name: str, param: torch.nn.Parameter) -> None:
        """AdaLomo's state of one parameter, made as its constructor makes it (fp32 zeros: one vector for a 1-D
        parameter, a row and a column mean for a matrix) but on the parameter's device, kept in self.state and
        handed to the package's dicts by name before each update (a loaded checkpoint replaces self.state)."""
        state = self.state[param]
        if not state:
            zeros = dict(dtype=torch.float32, device=param.device)
            if param.dim() == 1:
                state["exp_avg_sq"] = torch.zeros(param.shape[0], **zeros)
            else:
                state["exp_avg_sq_row"] = torch.zeros(param.shape[0], **zeros)
                state["exp_avg_sq_col"] = torch.zeros(param.shape[1], **zeros)
        for key, tensor in state.items():
            getattr(self.fused, key)[name] = tensor


class LomoConfig(MethodConfig):
    clip_grad_value: float | None = Field(
        None, gt=0, description="clamp each gradient element to ±value before the update (null: off, the package's "
                                "default)")


@register_method("lomo")
class Lomo(FullFineTuning):
    """LOMO: SGD fused into backward (with train.update_in_backward), every parameter trained, no optimizer state."""

    Config = LomoConfig  # prepare (everything trainable) is full FT's
    reference_package = "lomo-optim"
    fused_by_design = FUSED_DESIGN
    package_class = "Lomo"

    def package_options(self) -> dict[str, Any]:
        return {"clip_grad_value": self.config.clip_grad_value}

    def build_optimizer(self, model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
        package = import_reference("lomo_optim", self.name, self.reference_package)
        named = [(name, param) for name, param in model.named_parameters() if param.requires_grad]
        return FusedUpdate(named, getattr(package, self.package_class), lr, weight_decay, **self.package_options())

    def on_step_start(self, step, model, optimizer):
        optimizer.begin_step(step)
        return {}


class AdaLomoConfig(LomoConfig):
    eps: tuple[float, float] = Field(
        (1e-30, 1e-3), description="(added to squared gradients, floor of the parameter RMS that scales the lr)")
    clip_threshold: float = Field(1.0, gt=0, description="an update's RMS is capped at this value (grouped "
                                                         "update normalisation)")
    decay_rate: float = Field(-0.8, lt=0, description="second-moment decay: beta2 at step t = 1 - t^decay_rate")


@register_method("adalomo")
class AdaLomo(Lomo):
    """AdaLomo: LOMO with a factored second moment (a row and a column vector per matrix) and RMS-scaled lr."""

    Config = AdaLomoConfig
    package_class = "AdaLomo"
    no_fsdp = ("its factored second moment is built as plain row and column vectors, which cannot be updated "
               "from a gradient sharded as a DTensor")

    def package_options(self) -> dict[str, Any]:
        c = self.config
        return {"clip_grad_value": c.clip_grad_value, "eps": c.eps, "clip_threshold": c.clip_threshold,
                "decay_rate": c.decay_rate, "loss_scale": None}  # the loop does not scale the loss (docstring)
