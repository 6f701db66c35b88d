"""GaLore parameter groups, shared by the `galore` and `owlore` methods.

galore-torch projects a parameter's gradient only if its param group has a `rank` key (plus update_proj_gap,
scale, proj_type). Targets: the `.weight` of every nn.Linear whose module name contains "attn" or "mlp" (the 7
projections of a Llama layer). Everything else (embeddings, norms, lm_head) goes in one plain Adam group.

A rank at or above min(m, n) of a matrix cannot save anything: that matrix's rank is clamped to min(m, n) (it
then gets full-rank updates) with one warning naming it. Matrices are grouped by their effective rank.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import torch

from owlore_bench.errors import UserError

TARGET_KEYWORDS = ("attn", "mlp")
PROJ_TYPES = ("std", "reverse_std", "right", "left", "full")


def galore_targets(model: torch.nn.Module, keywords: Iterable[str] = TARGET_KEYWORDS) -> dict[str, torch.nn.Parameter]:
    """name → weight of every nn.Linear whose module name contains one of `keywords`."""
    return {f"{name}.weight": module.weight for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and any(key in name for key in keywords)}


def effective_rank(name: str, weight: torch.Tensor, rank: int) -> int:
    """`rank`, or min(m, n) with a warning naming the matrix when rank >= min(m, n) (no saving for it)."""
    smallest = min(weight.shape[0], weight.shape[1])
    if rank >= smallest:
        warnings.warn(f"galore rank {rank} >= min{tuple(weight.shape)} of {name}: clamped to {smallest} for this "
                      f"matrix (full-rank updates, no memory saving)", UserWarning, stacklevel=2)
        return smallest
    return rank


def galore_param_groups(model: torch.nn.Module, *, rank: int, update_proj_gap: int, scale: float, proj_type: str,
                        low_rank: bool = True, include_frozen: bool = False) -> list[dict[str, Any]]:
    """Param groups for galore-torch's GaLoreAdamW: one group per effective rank for the targets, one plain group.

    include_frozen: also take parameters that do not require grad now (layer sampling activates them later;
    the optimizer skips a parameter whose .grad is None). low_rank=False puts the targets in the plain group.
    """
    if rank <= 0:
        raise UserError(f"rank: {rank} must be a positive integer")
    if update_proj_gap <= 0:
        raise UserError(f"update_proj_gap: {update_proj_gap} must be a positive number of steps")
    if proj_type not in PROJ_TYPES:
        raise UserError(f"proj_type: unknown '{proj_type}'; use one of {', '.join(PROJ_TYPES)}")
    wanted = [p for p in model.parameters() if include_frozen or p.requires_grad]
    targets = galore_targets(model) if low_rank else {}
    target_ids = {id(p) for p in targets.values()}
    by_rank: dict[int, list[torch.nn.Parameter]] = {}
    wanted_ids = {id(p) for p in wanted}
    for name, weight in targets.items():
        if id(weight) in wanted_ids:
            by_rank.setdefault(effective_rank(name, weight, rank), []).append(weight)
    groups: list[dict[str, Any]] = [{"params": [p for p in wanted if id(p) not in target_ids]}]
    for group_rank, params in sorted(by_rank.items()):
        groups.append({"params": params, "rank": group_rank, "update_proj_gap": update_proj_gap,
                       "scale": scale, "proj_type": proj_type})
    return [group for group in groups if group["params"]]


def galore_adamw(groups: list[dict[str, Any]], lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """galore-torch's GaLoreAdamW (betas 0.9/0.999, eps 1e-6 as in galore-torch) over `groups`."""
    from galore_torch import GaLoreAdamW

    return GaLoreAdamW(groups, lr=lr, weight_decay=weight_decay, no_deprecation_warning=True)
