"""Resumable training checkpoints: what the loop needs to continue exactly where it stopped.

Saved: the parameters the optimizer can update (not frozen base weights), optimizer and scheduler state, the
method's own state (e.g. its layer sampler), torch RNG states, the step reached and the elapsed seconds.
Written to a temp folder and renamed, so a kill mid-save leaves the previous checkpoint intact. A sharded (FSDP)
run writes its shards with torch.distributed.checkpoint instead (owlore_bench/train/fsdp_checkpoint.py).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch

from owlore_bench.errors import UserError
from owlore_bench.train.distributed import is_main, world_size
from owlore_bench.train.fsdp import is_sharded
from owlore_bench.train.fsdp_checkpoint import EXTRA, METADATA, load_sharded, save_sharded


def optimized_parameter_names(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    return [name for name, p in model.named_parameters() if id(p) in in_optimizer]


def save_checkpoint(folder: Path, *, step: int, elapsed_s: float, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, scheduler: Any, method: Any) -> None:
    """Write the state after `step` optimizer steps to `folder` (atomically replacing an older one). Call it on
    every rank: a sharded (FSDP) model is saved by all ranks together (train/fsdp_checkpoint.py), a replicated
    one by rank 0 alone."""
    names = set(optimized_parameter_names(model, optimizer))
    if is_sharded(model):
        save_sharded(folder, step=step, elapsed_s=elapsed_s, model=model, names=names, optimizer=optimizer,
                     scheduler=scheduler, method=method)
        return
    if not is_main():
        return
    weights = {name: p.detach().clone() for name, p in model.named_parameters() if name in names}
    state = {
        "step": step,
        "elapsed_s": elapsed_s,
        "world_size": world_size(),  # batch_size is per rank: another N would change the global batch
        "weights": weights,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "method": method.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }
    staging = folder.with_name(folder.name + ".saving")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    torch.save(state, staging / "state.pt")
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        os.replace(folder, old)
    os.replace(staging, folder)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(folder: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                    method: Any) -> tuple[int, float]:
    """Restore everything save_checkpoint wrote; returns (step, elapsed_s). (0, 0.0) when there is none."""
    folder = _complete(folder)
    if folder is None:
        return 0, 0.0
    sharded = (folder / METADATA).is_file()
    if sharded != is_sharded(model):
        saved, here = ("fsdp", "replicate") if sharded else ("replicate", "fsdp")
        raise UserError(f"{folder} was saved by a train.parallel: {saved} run and this one is {here}; resume with "
                        f"--parallel {saved}, or start a new --out")
    if sharded:
        return load_sharded(folder, model=model, optimizer=optimizer, scheduler=scheduler, method=method)
    # weights_only=False: optimizer state holds GaLore projector objects; the file is our own.
    state = torch.load(folder / "state.pt", map_location="cpu", weights_only=False)
    saved_world = state.get("world_size", 1)
    if saved_world != world_size():
        raise UserError(f"{folder} was saved by a run on {saved_world} process(es), this one has {world_size()}: "
                        f"train.batch_size is per process, so the global batch would change; resume with --nproc "
                        f"{saved_world}, or start a new --out")
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state["weights"].items():
            parameters[name].copy_(value)
    method.load_state_dict(state["method"])
    optimizer.load_state_dict(state["optimizer"])
    move_state_objects(optimizer)
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state["step"], state["elapsed_s"]


def _complete(folder: Path) -> Path | None:
    """The folder of the last complete checkpoint: `folder`, or `<folder>.old` when a save was killed between
    its two renames; None when there is none."""
    for candidate in (folder, folder.with_name(folder.name + ".old")):
        if (candidate / "state.pt").is_file() or (candidate / EXTRA).is_file():
            return candidate
    return None


def move_state_objects(optimizer: torch.optim.Optimizer) -> None:
    """Put the tensors held by objects inside the optimizer state (GaLore's GaLoreProjector.ortho_matrix) on
    their parameter's device and dtype. Optimizer.load_state_dict moves only tensors stored directly in the
    state; a projector loaded with map_location="cpu" would otherwise multiply a CPU matrix with a CUDA
    gradient (galore-torch 1.0 creates ortho_matrix in the gradient's device and dtype)."""
    for param, param_state in optimizer.state.items():
        for value in param_state.values():
            for name, held in list(vars(value).items()) if hasattr(value, "__dict__") else ():
                if isinstance(held, torch.Tensor):
                    dtype = param.dtype if held.is_floating_point() else held.dtype
                    setattr(value, name, held.to(device=param.device, dtype=dtype))
