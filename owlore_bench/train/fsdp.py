"""`train.parallel: fsdp`: PyTorch FSDP2 (`torch.distributed.fsdp.fully_shard`) for every method that allows it.

After `method.prepare`, each decoder layer is `fully_shard`-ed (one all-gather and one reduce-scatter group per
layer), then the root (embeddings, final norm, lm_head, and anything a method added outside the layers). Every
parameter becomes a DTensor sharded on dim 0 over the ranks; each rank keeps 1/N of the weights, of the
gradients (reduce-scattered in backward) and of the optimizer state (created from the shards). Methods do not
know: they see parameters, gradients and an optimizer, as on one process. What that means for each kind:

- Layer sampling (lisa, owlore, badam) switches `requires_grad` on the sharded parameters; FSDP2 gathers a frozen
  layer for the forward and backward of the activations and reduce-scatters only the gradients that exist, so a
  frozen layer's shard gets no gradient and (unless keep_state) no optimizer state.
- GaLore's projector is the SVD of the whole gradient: galore-torch calls torch.linalg.svd on the gradient
  DTensor, which DTensor computes on the replicated (all-gathered) matrix, so every rank holds the projector a
  one-process run computes; the low-rank moments of a right projection stay sharded by rows, those of a left one
  (r x n) are a full copy on every rank (compact_galore_projectors keeps the projector itself small).
- The LoRA family: base weights and adapters are sharded alike (frozen and trainable parameters share a group).

Why the root is sharded with `reshard_after_forward=False`: backward starts with it (lm_head), so gathering it
again at once would only cost traffic (torch's own advice in fully_shard's docstring). On CUDA with bf16 compute
the shards are fp32 master weights, compute is bf16 and gradients are reduced in fp32 (MixedPrecisionPolicy);
the optimizer steps on the fp32 shards, as torchtune's distributed recipes do.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from owlore_bench.errors import UserError
from owlore_bench.train import distributed
from owlore_bench.train.layers import decoder_layers


def uses_fsdp(train: Any) -> bool:
    return getattr(train, "parallel", "replicate") == "fsdp"


def check_fsdp(method: Any, train: Any) -> None:
    """One line, before any training, for a combination FSDP cannot run soundly (the method's own reason, or a
    loop setting's)."""
    if not uses_fsdp(train):
        return
    reason = getattr(method, "no_fsdp", None)
    if reason:
        raise UserError(f"train.parallel: fsdp: method '{method.name}' cannot train sharded ({reason}); use "
                        f"--parallel replicate (every rank holds the whole model) or another method")
    if train.optimizer_state_bits == 8:
        raise UserError("train.optimizer_state_bits: 8 under train.parallel: fsdp: bitsandbytes' 8-bit kernels "
                        "work on whole tensors, not on DTensor shards; set optimizer_state_bits: 32 or use "
                        "--parallel replicate")


def mixed_precision(train: Any, device: torch.device):
    """bf16 compute with fp32 master shards and fp32 gradient reduction on CUDA (train.dtype auto or bf16);
    otherwise no casting (the weights' own dtype everywhere)."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    if device.type == "cuda" and train.dtype in ("auto", "bf16"):
        return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    return MixedPrecisionPolicy()


def load_dtype(train: Any, device: torch.device) -> str:
    """The dtype to load the weights in: fp32 master weights where FSDP computes in bf16 (mixed_precision)."""
    if uses_fsdp(train) and mixed_precision(train, device).param_dtype is not None:
        return "fp32"
    return train.dtype


def is_sharded(model: torch.nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def shard_model(model: torch.nn.Module, train: Any, policy: Any = None) -> torch.nn.Module:
    """fully_shard every decoder layer, then the root, on a 1-D mesh of all ranks (in place; returns the model).
    Without a process group (one process, `--parallel fsdp` without --nproc) a group of one is started.
    `policy`: a MixedPrecisionPolicy instead of mixed_precision(train, device) (the estimator's, for CUDA)."""
    from torch._subclasses.fake_tensor import unset_fake_temporarily
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    device = next(model.parameters()).device
    distributed.ensure_process_group(device)
    with unset_fake_temporarily():  # the mesh's rank table must be real, also under the estimator's fake tensors
        mesh = init_device_mesh(device.type, (distributed.world_size(),))
    policy = policy or mixed_precision(train, device)
    compact_galore_projectors()
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=mesh, reshard_after_forward=train.reshard_after_forward, mp_policy=policy)
    fully_shard(model, mesh=mesh, reshard_after_forward=False, mp_policy=policy)
    return model


# The SVD projectors of the GaLore family: (module, class) of every package whose projector slices its SVD factor.
SVD_PROJECTORS = (("galore_torch.galore_projector", "GaLoreProjector"),
                  ("fira.gradient_projection", "GradientProjector"))


def compact_galore_projectors() -> None:
    """Make the GaLore family's projectors copy the matrix they slice out of the SVD when it is a DTensor (a sharded
    run). galore-torch (and fira, its copy) return `Vh[:rank, :]` (or `U[:, :rank]`) as is for an fp32 gradient, a
    view that keeps the whole min(m, n) x n factor alive; FSDP's gradients are fp32 (the master shards' dtype) and
    the factor is replicated on every rank: 64 MiB per LLaMA-7B matrix, 14 GiB per rank in all. The copy holds
    rank x n, the same numbers. Runs without sharding are left exactly as the packages make them. Idempotent."""
    import importlib

    from torch.distributed.tensor import DTensor

    def compact(original):
        def get_orthogonal_matrix(self, weights, rank, type):
            matrix = original(self, weights, rank, type)
            if isinstance(matrix, list):
                return [part.clone() if isinstance(part, DTensor) else part for part in matrix]
            return matrix.clone() if isinstance(matrix, DTensor) else matrix

        get_orthogonal_matrix.compacts_dtensors = True
        return get_orthogonal_matrix

    for module_name, class_name in SVD_PROJECTORS:
        try:
            projector = getattr(importlib.import_module(module_name), class_name)
        except ImportError:  # the package is not installed: nothing to compact
            continue
        if not getattr(projector.get_orthogonal_matrix, "compacts_dtensors", False):
            projector.get_orthogonal_matrix = compact(projector.get_orthogonal_matrix)


def unsharded_skeleton(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of the prepared model whose parameters are on the meta device (no memory), taken before
    sharding: rank 0 fills it with the consolidated weights after training (consolidate). Buffers are copied
    for real (rotary frequencies: small, and not in a state dict)."""
    memo: dict[int, Any] = {id(param): torch.nn.Parameter(torch.empty_like(param, device="meta"),
                                                         requires_grad=param.requires_grad)
                            for param in model.parameters()}
    return copy.deepcopy(model, memo)


def consolidate(model: torch.nn.Module, skeleton: torch.nn.Module | None, dtype: torch.dtype | None
                ) -> torch.nn.Module | None:
    """Gather the sharded model's full weights (every rank takes part; rank 0 receives them, on the CPU, one
    tensor at a time) into `skeleton`; returns that ordinary model on rank 0 (cast to `dtype`, the compute dtype
    under mixed precision, and moved to the training device), None on the other ranks."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    device = next(model.parameters()).device
    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if not distributed.is_main() or skeleton is None:
        return None
    skeleton.load_state_dict(full, assign=True)
    if callable(getattr(skeleton, "tie_weights", None)):
        skeleton.tie_weights()
    if dtype is not None:
        skeleton.to(dtype)
    return skeleton.to(device)
