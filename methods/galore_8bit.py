"""GaLore 8-bit (galore-torch GaLoreAdamW8bit on bitsandbytes): GaLore whose projected Adam moments, and the plain
ones of embeddings, norms and lm_head, are bitsandbytes' blockwise 8-bit states.

Same param groups and defaults as `galore` (galore-torch README usage: rank 128, update_proj_gap 200, scale 0.25,
std); betas (0.9, 0.999) and eps 1e-8 are GaLoreAdamW8bit's own (bitsandbytes'). bitsandbytes keeps fp32 states
for a tensor under 4096 elements (its min_8bit_size), uint8 states plus one fp32 absmax per 256 elements above.

Runs on CPU: bitsandbytes (≥ 0.48) has CPU kernels for its 8-bit optimizers, but galore-torch's step calls
torch.cuda.synchronize() after every parameter (for paged states), which raises on a CPU-only torch; for an
optimizer whose parameters are not on CUDA that call is skipped (nothing is queued on a GPU to wait for).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from owlore_bench import register_method
from owlore_bench.method import import_reference
from owlore_bench.methods.galore import GaLore
from owlore_bench.train.galore_groups import galore_param_groups


@contextlib.contextmanager
def cuda_synchronize_skipped() -> Iterator[None]:
    """torch.cuda.synchronize as a no-op (for a step whose parameters are all off CUDA). Undone on exit."""
    original = torch.cuda.synchronize
    torch.cuda.synchronize = lambda device=None: None
    try:
        yield
    finally:
        torch.cuda.synchronize = original


def galore_adamw_8bit(groups, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """galore-torch's GaLoreAdamW8bit over `groups`, whose step also runs where torch has no CUDA."""
    import_reference("bitsandbytes", "galore_8bit", "bitsandbytes")  # first import without hub kernel downloads
    from galore_torch import GaLoreAdamW8bit

    class GaLoreAdamW8bitAnyDevice(GaLoreAdamW8bit):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            # galore-torch 1.0 passes (percentile_clipping=100, block_wise=True) positionally where bitsandbytes
            # ≥ 0.45 now takes (max_unorm, skip_zeros): restore what it meant, no update-norm cap, no zero skipping.
            self.args.max_unorm, self.args.skip_zeros = 0.0, False

        @torch.no_grad()
        def step(self, closure=None):
            on_cuda = any(p.is_cuda for group in self.param_groups for p in group["params"])
            with contextlib.nullcontext() if on_cuda else cuda_synchronize_skipped():
                return super().step(closure)

    from torch._subclasses.fake_tensor import unset_fake_temporarily

    # bitsandbytes fills its quantile maps from real numbers when it is built: under the memory estimator's
    # FakeTensorMode they are built as real tensors (2 KiB, shared by all parameters); otherwise this is a no-op.
    with unset_fake_temporarily():
        return GaLoreAdamW8bitAnyDevice(groups, lr=lr, weight_decay=weight_decay)


@register_method("galore_8bit")
class GaLore8bit(GaLore):
    """GaLore 8-bit (galore-torch GaLoreAdamW8bit + bitsandbytes): GaLore with 8-bit blockwise Adam states."""

    reference_package = "galore-torch"
    other_packages = ("bitsandbytes",)
    no_fsdp = "bitsandbytes' 8-bit kernels update whole tensors, not DTensor shards"

    def build_optimizer(self, model, lr, weight_decay):
        c = self.config
        groups = galore_param_groups(model, rank=c.rank, update_proj_gap=c.update_proj_gap, scale=c.scale,
                                     proj_type=c.proj_type, target_modules=c.target_modules)
        return galore_adamw_8bit(groups, lr=lr, weight_decay=weight_decay)
