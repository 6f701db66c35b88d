"""GaLore parameter groups, shared by `galore`, `owlore` and the optimizers built on them (apollo, fira, galore_8bit).

galore-torch projects a parameter's gradient only if its param group has a `rank` key (plus update_proj_gap,
scale, proj_type). Targets: every 2-D weight matrix inside the decoder layers, whatever its module class or name
(Llama's seven projections; GPT-NeoX's `attention.query_key_value`; OPT's `fc1`; GPT-2's Conv1D `c_attn`, ...),
narrowed by a method's `target_modules` (a matrix is kept if its module name contains one of the strings, the
rule of galore-torch's README, whose example list is ["attn", "mlp"]). Everything else (embeddings, norms, biases,
lm_head) goes in one plain Adam group. Each run records the matrices it projected (`projected_matrices`).

GPT-2's Conv1D stores its weight transposed (in x out, not nn.Linear's out x in). GaLore's `std` and
`reverse_std` choose the side by shape, so they project a Conv1D weight as they would its nn.Linear twin; an
explicit `left` / `right` names a side of the (out x in) matrix, so it is swapped for a Conv1D weight.

A rank at or above min(m, n) of a matrix cannot save anything: that matrix's rank is clamped to min(m, n) (it
then gets full-rank updates), with one warning for all such matrices. Matrices are grouped by their effective rank.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal, get_args

import torch
from pydantic import Field, model_serializer

from owlore_bench.errors import UserError
from owlore_bench.method import MethodConfig
from owlore_bench.train.layers import decoder_layer_parameters, name_patterns

ProjType = Literal["std", "reverse_std", "right", "left", "full"]  # galore-torch's projector sides
PROJ_TYPES = get_args(ProjType)
_MIRRORED_SIDE = {"left": "right", "right": "left"}


class ProjectionTargetsConfig(MethodConfig):
    """Base of the GaLore-family configs: which matrices get low-rank updates."""

    target_modules: list[str] | None = Field(
        None, min_length=1, description="project only the decoder-layer matrices whose module name contains one of "
                                        "these strings (e.g. [attn, mlp]); null = every 2-D weight of the decoder "
                                        "layers")

    @model_serializer(mode="wrap")
    def _default_targets_left_out(self, handler):
        # null (the default) is left out of the saved config: run configs saved before the field existed still
        # match their plan (runner.unit_is_complete compares them), and they did exactly what null does.
        values = handler(self)
        if values.get("target_modules", ...) is None:
            del values["target_modules"]
        return values


def projection_targets(model: torch.nn.Module, target_modules: list[str] | None = None,
                       field: str = "target_modules") -> dict[str, torch.nn.Parameter]:
    """name → every 2-D weight inside the decoder layers, or those whose module name contains one of
    `target_modules`; a UserError naming the layers' module names when that list matches none."""
    matrices = {name: param for name, param in decoder_layer_parameters(model) if param.ndim == 2}
    if target_modules is None:
        return matrices
    chosen = {name: param for name, param in matrices.items()
              if any(key in name.rsplit(".", 1)[0] for key in target_modules)}
    if not chosen:
        modules = sorted({name.rsplit(".", 2)[-2] for name in matrices})
        raise UserError(f"{field}: {target_modules} match none of the weight matrices of the decoder layers; their "
                        f"modules are named {', '.join(modules)}")
    return chosen


def projected_info(targets: dict[str, torch.nn.Parameter]) -> dict[str, Any]:
    """For summary.json's method_info: the projected matrices as name patterns with counts."""
    return {"projected_matrices": name_patterns(targets)}


class RecordsProjectedMatrices:
    """Mixin for a Method (before its base class) whose optimizer projects `config.target_modules`: prepare refuses
    a list that matches nothing, before anything trains, and run_info records the projected matrices."""

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        model = super().prepare(model)
        targets = projection_targets(model, self.config.target_modules, f"{self.name}.target_modules")
        self.projected = projected_info(targets)
        return model

    def run_info(self) -> dict[str, Any]:
        return {**super().run_info(), **getattr(self, "projected", {})}


def transposed_weights(model: torch.nn.Module) -> set[int]:
    """ids of weights stored in x out (transformers' Conv1D, GPT-2 style)."""
    from transformers.pytorch_utils import Conv1D

    return {id(module.weight) for module in model.modules() if isinstance(module, Conv1D)}


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
                        low_rank: bool = True, include_frozen: bool = False,
                        target_modules: list[str] | None = None) -> list[dict[str, Any]]:
    """Param groups for galore-torch's GaLoreAdamW: one group per (effective rank, side) for the targets
    (projection_targets), one plain group.

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
    targets = projection_targets(model, target_modules) if low_rank else {}
    target_ids = {id(p) for p in targets.values()}
    transposed = transposed_weights(model) if targets else set()
    by_key: dict[tuple[int, str], list[torch.nn.Parameter]] = {}
    wanted_ids = {id(p) for p in wanted}
    clamped = {}
    for name, weight in targets.items():
        if id(weight) in wanted_ids:
            side = _MIRRORED_SIDE.get(proj_type, proj_type) if id(weight) in transposed else proj_type
            by_key.setdefault((effective_rank(weight, rank), side), []).append(weight)
            if rank >= min(weight.shape):
                clamped[name] = weight
    warn_clamped(rank, clamped)
    groups: list[dict[str, Any]] = [{"params": [p for p in wanted if id(p) not in target_ids]}]
    for (group_rank, side), params in sorted(by_key.items()):
        groups.append({"params": params, "rank": group_rank, "update_proj_gap": update_proj_gap,
                       "scale": scale, "proj_type": side})
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
