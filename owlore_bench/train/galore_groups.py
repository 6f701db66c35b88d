"""GaLore parameter groups, shared by `galore`, `owlore` and the optimizers built on them (apollo, fira, galore_8bit).

galore-torch projects a parameter's gradient only if its param group has a `rank` key (plus update_proj_gap,
scale, proj_type). Targets: the `.weight` of every nn.Linear whose module name contains "attn" or "mlp" (the 7
projections of a Llama layer). Everything else (embeddings, norms, lm_head) goes in one plain Adam group.

A rank at or above min(m, n) of a matrix cannot save anything: that matrix's rank is clamped to min(m, n) (it
then gets full-rank updates), with one warning for all such matrices. Matrices are grouped by their effective rank.
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


def effective_rank(weight: torch.Tensor, rank: int) -> int:
    """`rank`, or min(m, n) when rank >= min(m, n) (such a matrix gets full-rank updates: no saving for it)."""
    return min(rank, weight.shape[0], weight.shape[1])


def warn_clamped(rank: int, clamped: dict[str, torch.Tensor]) -> None:
    """ONE warning for all matrices whose rank was clamped, with their count, shapes and an example name (a 30-layer
    model would otherwise print 60 lines per run)."""
    if not clamped:
        return
    shapes = sorted({tuple(weight.shape) for weight in clamped.values()})
    first = next(iter(clamped))
    warnings.warn(f"galore rank {rank} >= min(m, n) of {len(clamped)} matrices (shapes {', '.join(map(str, shapes))}; "
                  f"e.g. {first}): clamped to min(m, n) for them (full-rank updates, no memory saving)",
                  UserWarning, stacklevel=3)


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
    clamped = {}
    for name, weight in targets.items():
        if id(weight) in wanted_ids:
            group_rank = effective_rank(weight, rank)
            by_rank.setdefault(group_rank, []).append(weight)
            if rank >= min(weight.shape):
                clamped[name] = weight
    warn_clamped(rank, clamped)
    groups: list[dict[str, Any]] = [{"params": [p for p in wanted if id(p) not in target_ids]}]
    for group_rank, params in sorted(by_rank.items()):
        groups.append({"params": params, "rank": group_rank, "update_proj_gap": update_proj_gap,
                       "scale": scale, "proj_type": proj_type})
    return [group for group in groups if group["params"]]


def projected_groups(groups: list[dict[str, Any]], **keys: Any) -> list[dict[str, Any]]:
    """`groups` with `keys` added to every projected (rank-carrying) group: the optimizers built on GaLore's
    grouping (APOLLO, Fira) read a few more or other keys from the same groups."""
    return [{**group, **keys} if "rank" in group else group for group in groups]


def galore_adamw(groups: list[dict[str, Any]], lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """galore-torch's GaLoreAdamW (betas 0.9/0.999, eps 1e-6 as in galore-torch) over `groups`."""
    from owlore_bench.no_kernel_downloads import no_kernel_downloads

    with no_kernel_downloads():  # galore-torch imports bitsandbytes, whose import asks the hub for a kernel
        from galore_torch import GaLoreAdamW

    return GaLoreAdamW(groups, lr=lr, weight_decay=weight_decay, no_deprecation_warning=True)
