"""train.optimizer_state_bits: 8 — the method's AdamW rebuilt as bitsandbytes' blockwise 8-bit AdamW.

One seam for every method: the loop (and the estimator) builds the method's optimizer as usual and then hands it
to `with_state_bits`, which swaps an exact torch.optim.AdamW for bnb.optim.AdamW8bit over the SAME param_groups
(each group's lr, betas, eps, weight_decay and any extra keys kept), so a method needs no 8-bit code of its own.
An optimizer of any other class (GaLoreAdamW, APOLLO, Adam-mini, ...) keeps its own state layout; asking for
8 bits there is one UserError line (galore_8bit is GaLore's own 8-bit method).

What bitsandbytes keeps per parameter (bitsandbytes/optim/optimizer.py, Optimizer2State.init_state, checked
for 0.50): a parameter with fewer than `min_8bit_size` = 4096 elements keeps two fp32 moments (8 bytes per
element); a larger one keeps two uint8 moments (2 bytes per element) plus one fp32 absmax per block of 256
elements for each moment (2 x 4 bytes per started block), and the optimizer shares two 256-entry fp32 quantile
maps (qmap1, qmap2: 2 x 1 KiB) across all parameters. `adamw_8bit_state_bytes` is that formula.
AdamW8bit, not PagedAdamW8bit: paged state lives in CUDA unified memory that the driver may evict to the host,
so its device bytes are not what the ledger can count.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from owlore_bench.errors import UserError

MIN_8BIT_SIZE = 4096  # bnb's default min_8bit_size: smaller tensors keep fp32 states
BLOCK_SIZE = 256  # bnb's blockwise quantisation block (hard-coded in Optimizer2State.init_state)
QMAP_BYTES = 2 * 256 * 4  # the two shared 256-entry fp32 quantile maps
# torch-only group options bnb's optimizer does not take (amsgrad / maximize are refused first, see below)
_GROUP_KEYS_DROPPED = ("foreach", "fused", "capturable", "differentiable", "amsgrad", "maximize",
                       "decoupled_weight_decay")


def adamw_8bit_state_bytes(numels: Iterable[int]) -> int:
    """Bytes of bnb AdamW8bit's state for parameters of these element counts (see the module docstring)."""
    sizes = list(numels)
    small = sum(8 * n for n in sizes if n < MIN_8BIT_SIZE)
    large = sum(2 * n + 2 * 4 * math.ceil(n / BLOCK_SIZE) for n in sizes if n >= MIN_8BIT_SIZE)
    return small + large + (QMAP_BYTES if any(n >= MIN_8BIT_SIZE for n in sizes) else 0)


def _bitsandbytes():
    from owlore_bench.no_kernel_downloads import no_kernel_downloads

    try:
        with no_kernel_downloads():
            import bitsandbytes
    except ImportError:
        raise UserError("train.optimizer_state_bits: 8 needs bitsandbytes; pip install bitsandbytes "
                        "(or set optimizer_state_bits: 32)") from None
    return bitsandbytes


def check_state_bits(bits: int, device: torch.device | str) -> None:
    """Before any training: one line when 8-bit states cannot run here (bitsandbytes missing, or it has no 8-bit
    optimizer kernel for this device: bitsandbytes before 0.48 ran them on CUDA only)."""
    if bits == 32:
        return
    bnb = _bitsandbytes()
    device = torch.device(device)
    probe = torch.nn.Parameter(torch.zeros(MIN_8BIT_SIZE, device=device))  # big enough to get 8-bit states
    probe.grad = torch.zeros_like(probe)
    try:
        bnb.optim.AdamW8bit([probe]).step()
    except (RuntimeError, NotImplementedError, ValueError) as error:
        raise UserError(f"train.optimizer_state_bits: 8 does not run on {device.type} with bitsandbytes "
                        f"{bnb.__version__} ({str(error).splitlines()[0][:120]}); train on CUDA or set "
                        f"optimizer_state_bits: 32") from None


def with_state_bits(optimizer: torch.optim.Optimizer, bits: int, method_name: str) -> torch.optim.Optimizer:
    """`optimizer` itself for 32 bits; for 8 bits its bitsandbytes 8-bit twin over the same param_groups."""
    if bits == 32:
        return optimizer
    kind = type(optimizer)
    if kind is not torch.optim.AdamW:  # torch's Adam is not: its weight decay is L2, bnb's is decoupled
        raise UserError(f"train.optimizer_state_bits: 8 swaps torch's AdamW for bitsandbytes' AdamW8bit, but "
                        f"method '{method_name}' uses {kind.__module__}.{kind.__name__}; set optimizer_state_bits: "
                        f"32 (or use the method's own 8-bit variant, e.g. galore_8bit)")
    if optimizer.state:
        raise RuntimeError("with_state_bits: swap the optimizer before it has taken a step")
    for group in optimizer.param_groups:
        if group.get("amsgrad") or group.get("maximize"):
            raise UserError(f"train.optimizer_state_bits: 8: method '{method_name}' asks AdamW for amsgrad or "
                            f"maximize, which bitsandbytes' AdamW8bit does not offer; set optimizer_state_bits: 32")
    groups = [{key: value for key, value in group.items() if key not in _GROUP_KEYS_DROPPED}
              for group in optimizer.param_groups]
    defaults = {key: optimizer.defaults[key] for key in ("lr", "betas", "eps", "weight_decay")}
    return _bitsandbytes().optim.AdamW8bit(groups, **defaults)
