"""Data-parallel training over torch.distributed: ranks, batch shards, gradient averaging, agreement checks.

torchrun (or `owlore-bench train --nproc N`, which starts torchrun) sets WORLD_SIZE, RANK and LOCAL_RANK; every
rank then runs the same loop. Without them (one process) every function here is the identity or a no-op, so
the loop reads the same for one process and for N.

Why not torch's DistributedDataParallel: layer sampling changes `requires_grad` every K steps, and DDP's reducer
is built once for a fixed set of parameters ("Expected to have finished reduction ...", or replicas silently out
of sync). Averaging the `.grad`s that exist after backward, in flat buckets, is correct for exactly the
parameters trained this step, whatever the method froze. GaLore then projects the averaged gradient, so every
rank computes the same projector.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from owlore_bench.errors import UserError

IGNORE_INDEX = -100
BUCKET_BYTES = 25 * 2**20  # DDP's default bucket size
# Rank 0 evaluates (lm-eval, MT-Bench) while the others wait in a barrier: far longer than gloo's 30-min default.
GROUP_TIMEOUT = timedelta(hours=6)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True on the one process that writes files (rank 0, or the only process)."""
    return rank() == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: str = "auto") -> bool:
    """Join the process group torchrun describes in the environment: nccl on CUDA, gloo on CPU.

    Each CUDA rank takes GPU LOCAL_RANK. Returns True when running distributed (no-op for one process).
    """
    if is_distributed() or not launched_by_torchrun():
        return is_distributed()
    use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if use_cuda else "gloo", timeout=GROUP_TIMEOUT)
    return True


def ensure_process_group(device: torch.device) -> None:
    """A process group of one (this process) where none exists: FSDP needs one even on a single process
    (`--parallel fsdp` without --nproc, e.g. the GPU check's world-size-1 run). nccl on CUDA, gloo on CPU."""
    if is_distributed():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device.index or 0)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", store=dist.HashStore(), rank=0,
                            world_size=1, timeout=GROUP_TIMEOUT)


def shutdown() -> None:
    if is_distributed():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def _collective_device() -> torch.device:
    """Where small tensors for a collective must live: nccl only moves CUDA tensors."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def label_tokens(labels: torch.Tensor) -> int:
    """Tokens the causal-LM loss averages over: labels after the one-token shift that are not ignored."""
    return int((labels[:, 1:] != IGNORE_INDEX).sum())


def shard_batch(batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], float]:
    """This rank's rows of a global batch, and the factor its mean loss is scaled by.

    The global batch is the same on every rank (data order does not depend on the world size), so 2 ranks × b
    rows see exactly what 1 rank × 2b rows sees. Each rank's loss is a mean over its own label tokens; scaling
    it by world × (its tokens / global tokens) makes the average over ranks the global token mean, i.e. the
    loss (and gradient) of the undivided batch.
    """
    world = world_size()
    if world == 1:
        return batch, 1.0
    rows = batch["input_ids"].shape[0]
    if rows % world:
        raise UserError(f"train.batch_size: the global batch of {rows} rows does not split over {world} ranks")
    per_rank = rows // world
    start = rank() * per_rank
    local = {key: value[start:start + per_rank] for key, value in batch.items()}
    return local, world * label_tokens(local["labels"]) / max(1, label_tokens(batch["labels"]))


def _buckets(tensors: list[torch.Tensor], limit: int) -> Iterator[list[torch.Tensor]]:
    """Consecutive same-dtype runs of `tensors` of at most ~`limit` bytes each (flattening needs one dtype)."""
    bucket: list[torch.Tensor] = []
    size = 0
    for tensor in tensors:
        nbytes = tensor.numel() * tensor.element_size()
        if bucket and (size + nbytes > limit or tensor.dtype != bucket[0].dtype):
            yield bucket
            bucket, size = [], 0
        bucket.append(tensor)
        size += nbytes
    if bucket:
        yield bucket


def average_gradients(params: list[torch.nn.Parameter], bucket_bytes: int = BUCKET_BYTES) -> None:
    """Replace every existing `.grad` of `params` by its mean over ranks (bucketed all-reduce of flat copies).

    Every rank must hold gradients for the same parameters (check_same_trainable guards that); parameters
    without a gradient this step are skipped on all ranks alike, and so are DTensor gradients: under
    train.parallel fsdp the reduce-scatter inside backward already averaged them (train/fsdp.py).
    """
    world = world_size()
    if world == 1:
        return
    grads = [p.grad for p in params if p.grad is not None and not _is_dtensor(p.grad)]
    for bucket in _buckets(grads, bucket_bytes):
        flat = torch._utils._flatten_dense_tensors(bucket)
        dist.all_reduce(flat)
        flat.div_(world)
        for grad, averaged in zip(bucket, torch._utils._unflatten_dense_tensors(flat, bucket)):
            grad.copy_(averaged)


def _is_dtensor(tensor: torch.Tensor) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(tensor, DTensor)


def check_data_parallel(method: Any, processes: int) -> None:
    """One line, before any training, when the method refuses to train on more than one process (its reason)."""
    reason = getattr(method, "no_data_parallel", None)
    if processes > 1 and reason:
        raise UserError(f"--nproc {processes}: method '{method.name}' cannot train data parallel ({reason}); "
                        f"train it on one process")


class RanksDisagree(RuntimeError):
    """Raised on EVERY rank at once (after a collective that showed the disagreement), so the loop can record the
    run as failed on all ranks instead of leaving some waiting in a collective."""


def _trainable_fingerprint(model: torch.nn.Module) -> int:
    mask = bytes(int(p.requires_grad) for p in model.parameters())
    return zlib.crc32(mask)


def check_same_trainable(model: torch.nn.Module, step: int, extra: dict[str, Any]) -> None:
    """Fail loudly unless every rank trains the same parameters this step (e.g. the same sampled layers).

    One all-gather of a 4-byte fingerprint per step; on a mismatch each rank's method fields (e.g. its
    active_layers) go into the error.
    """
    if world_size() == 1:
        return
    fingerprint = torch.tensor([_trainable_fingerprint(model)], dtype=torch.int64, device=_collective_device())
    gathered = [torch.zeros_like(fingerprint) for _ in range(world_size())]
    dist.all_gather(gathered, fingerprint)
    if len({int(value) for value in gathered}) == 1:
        return
    views: list[Any] = [None] * world_size()
    dist.all_gather_object(views, extra)
    raise RanksDisagree(f"ranks disagree on the trainable parameters at step {step}: "
                       + "; ".join(f"rank {r}: {view}" for r, view in enumerate(views))
                       + " (a method's sampler must be seeded alike on every rank)")


def sum_over_ranks(*values: float) -> list[float]:
    """Each value summed over ranks (one all-reduce of a float64 vector)."""
    if world_size() == 1:
        return list(values)
    vector = torch.tensor(values, dtype=torch.float64, device=_collective_device())
    dist.all_reduce(vector)
    return vector.tolist()


def gather_memory(ledger: dict[str, int]) -> dict[str, Any]:
    """The step's ledger over ranks: every `mem_*` field as the max over ranks, plus `memory_by_rank` (one
    ledger per rank, in rank order). One process: the ledger unchanged."""
    if world_size() == 1 or not ledger:
        return ledger
    ledgers: list[Any] = [None] * world_size()
    dist.all_gather_object(ledgers, ledger)
    return {**{key: max(item[key] for item in ledgers) for key in ledger}, "memory_by_rank": ledgers}


def from_main(value: Any) -> Any:
    """Rank 0's `value` on every rank (a pickled broadcast); one process: `value` itself. For decisions that
    every rank must take alike although each could see the world differently, e.g. which units of a sweep to run
    while cluster jobs hold others."""
    if world_size() == 1:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def check_same(name: str, value: Any, fix: str) -> None:
    """One clear line unless every rank holds the same `value` (e.g. the step it resumes from)."""
    if world_size() == 1:
        return
    values: list[Any] = [None] * world_size()
    dist.all_gather_object(values, value)
    if len(set(map(repr, values))) > 1:
        raise UserError(f"{name} differs between ranks ({', '.join(f'rank {r}: {v}' for r, v in enumerate(values))})"
                        f"; {fix}")
