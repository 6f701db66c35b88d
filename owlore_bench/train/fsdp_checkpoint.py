"""Resumable checkpoints of a sharded (`train.parallel: fsdp`) run, written with torch.distributed.checkpoint (DCP).

Every rank writes its own shards of the optimized parameters and of every tensor in the optimizer state, in
parallel, into one DCP folder (`.metadata` + one file per rank); nothing is gathered. What is not a tensor of the
optimizer state (GaLore's projector objects, step counters), the parameter groups, the scheduler, the method's
state, the RNG states and the step reached go into `extra.pt`, written by rank 0; a DTensor inside those
(GaLore's replicated projector, BAdam's fp32 copy of its active block) is stored whole and sharded again on load.

Why the layout of each optimizer tensor is recorded: DCP loads in place, into tensors of the right global shape
and placement, and a fresh optimizer has no state yet (which parameters hold state, and GaLore's low-rank shapes,
are known only from the saved run). `extra.pt` names each tensor's global shape, dtype and placements, so load
allocates exactly the shards the unbroken run held, and the memory ledger of a resumed run is the same.

The folder is written as `<name>.saving` and renamed by rank 0 after every rank finished (the same rename dance as
the one-process checkpoint), so a kill mid-save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from owlore_bench.errors import UserError
from owlore_bench.train import distributed

EXTRA = "extra.pt"
METADATA = ".metadata"  # DCP's file: its presence marks a sharded checkpoint


class _WholeDTensor:
    """A DTensor held by a non-tensor object, stored whole (full_tensor) with its placements."""

    def __init__(self, tensor: Any):
        self.full = tensor.full_tensor().cpu()
        self.placements = tuple(tensor.placements)


def _portable(value: Any, depth: int = 0) -> Any:
    """`value` with every DTensor inside (dicts, lists, object attributes) replaced by a _WholeDTensor. A
    collective for each DTensor: every rank walks the same values in the same order."""
    from torch.distributed.tensor import DTensor

    if isinstance(value, DTensor):
        return _WholeDTensor(value)
    if depth >= 4 or isinstance(value, (torch.Tensor, str, bytes, int, float, bool, type(None))):
        return value
    if isinstance(value, dict):
        return {key: _portable(item, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_portable(item, depth + 1) for item in value)
    if hasattr(value, "__dict__") and not isinstance(value, type):
        clone = copy.copy(value)
        for name, item in vars(value).items():
            setattr(clone, name, _portable(item, depth + 1))
        return clone
    return value


def _restored(value: Any, mesh: Any, depth: int = 0) -> Any:
    """The inverse of _portable: each _WholeDTensor sharded again on `mesh` (this rank keeps its part)."""
    from torch.distributed.tensor import distribute_tensor

    if isinstance(value, _WholeDTensor):
        return distribute_tensor(value.full, mesh, value.placements)
    if depth >= 4 or isinstance(value, (torch.Tensor, str, bytes, int, float, bool, type(None))):
        return value
    if isinstance(value, dict):
        return {key: _restored(item, mesh, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_restored(item, mesh, depth + 1) for item in value)
    if hasattr(value, "__dict__") and not isinstance(value, type):
        for name, item in vars(value).items():
            setattr(value, name, _restored(item, mesh, depth + 1))
    return value


def _layout(tensor: torch.Tensor) -> tuple[Any, ...]:
    """(global shape, dtype, placements or None for a plain tensor) of a state tensor."""
    placements = tuple(tensor.placements) if hasattr(tensor, "placements") else None
    return tuple(tensor.shape), tensor.dtype, placements


def _split_optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The optimizer's state as ({'optimizer.<index>.<key>': tensor}, {'objects', 'layout', 'param_groups'});
    index = the parameter's position in optimizer.state_dict() (the same on every rank)."""
    saved = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    objects: dict[int, dict[str, Any]] = {}
    layout: dict[str, tuple[Any, ...]] = {}
    for index, state in sorted(saved["state"].items()):
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{key}"] = value
                layout[f"optimizer.{index}.{key}"] = _layout(value)
            else:
                objects.setdefault(index, {})[key] = _portable(value)
    return tensors, {"objects": objects, "layout": layout, "param_groups": saved["param_groups"]}


def save_sharded(folder: Path, *, step: int, elapsed_s: float, model: torch.nn.Module, names: set[str],
                 optimizer: torch.optim.Optimizer, scheduler: Any, method: Any) -> None:
    """Every rank: write the state after `step` optimizer steps to `folder` (`names`: the optimized parameters)."""
    import torch.distributed.checkpoint as dcp

    staging = folder.with_name(folder.name + ".saving")
    if distributed.is_main():
        shutil.rmtree(staging, ignore_errors=True)
    distributed.barrier()
    optimizer_tensors, optimizer_rest = _split_optimizer_state(optimizer)
    weights = {f"model.{name}": param for name, param in model.named_parameters() if name in names}
    extra = {"step": step, "elapsed_s": elapsed_s, "world_size": distributed.world_size(), "parallel": "fsdp",
             "weights": sorted(names), **optimizer_rest, "scheduler": scheduler.state_dict(),
             "method": _portable(method.state_dict()), "torch_rng": torch.get_rng_state(),
             "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
    dcp.save({**weights, **optimizer_tensors}, checkpoint_id=staging)
    if distributed.is_main():
        torch.save(extra, staging / EXTRA)
        old = folder.with_name(folder.name + ".old")
        if folder.exists():
            os.replace(folder, old)
        os.replace(staging, folder)
        shutil.rmtree(old, ignore_errors=True)
    distributed.barrier()


def _empty_like_layout(layout: tuple[Any, ...], param: torch.Tensor) -> torch.Tensor:
    """An uninitialised tensor of a saved state tensor's global shape, dtype and placements (on param's mesh)."""
    shape, dtype, placements = layout
    if placements is None:
        return torch.empty(shape, dtype=dtype, device="cpu" if not shape else param.device)
    from torch.distributed.tensor import empty

    return empty(shape, dtype=dtype, device_mesh=param.device_mesh, placements=placements)


def load_sharded(folder: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                 method: Any) -> tuple[int, float]:
    """Every rank: restore what save_sharded wrote; returns (step, elapsed_s)."""
    import torch.distributed.checkpoint as dcp

    extra = torch.load(folder / EXTRA, map_location="cpu", weights_only=False)  # our own file: objects inside
    if extra["world_size"] != distributed.world_size():
        raise UserError(f"{folder} holds the shards of {extra['world_size']} process(es), this run has "
                        f"{distributed.world_size()}: train.batch_size is per process, so the global batch would "
                        f"change; resume with --nproc {extra['world_size']}, or start a new --out")
    parameters = dict(model.named_parameters())
    held = [param for group in optimizer.param_groups for param in group["params"]]
    mesh = held[0].device_mesh
    targets: dict[str, torch.Tensor] = {f"model.{name}": parameters[name] for name in extra["weights"]}
    for key, layout in extra["layout"].items():
        targets[key] = _empty_like_layout(layout, held[int(key.split(".")[1])])
    method.load_state_dict(_restored(extra["method"], mesh))  # first: BAdam activates its saved block
    dcp.load(targets, checkpoint_id=folder)
    state: dict[int, dict[str, Any]] = {}
    for key in extra["layout"]:
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = targets[key]
    for index, objects in extra["objects"].items():
        state.setdefault(int(index), {}).update(_restored(objects, mesh))
    optimizer.load_state_dict({"state": state, "param_groups": extra["param_groups"]})
    scheduler.load_state_dict(extra["scheduler"])
    torch.set_rng_state(extra["torch_rng"])
    if extra["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(extra["cuda_rng"])
    return extra["step"], extra["elapsed_s"]
