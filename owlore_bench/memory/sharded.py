"""Per-rank memory of a sharded (`train.parallel: fsdp`) run, for the estimator: a fake process group of N ranks in
this one process, and the all-gathered buffers FSDP holds in flight.

The estimator (memory/estimate.py) runs the real `fully_shard` on its fake tensors inside `fake_process_group(N)`:
torch's FakeProcessGroup answers every collective with the right shapes and no data, so this process plays rank 0
of N, and the ledger reads its local shards (weights, gradients, optimizer state) exactly as a real rank's ledger
does. What the ledger cannot see is what FSDP gathers for compute and frees again (on CPU no allocator shows it;
on CUDA it is part of `other`). `gathered_bytes` adds it by this rule, per rank, at the peak of backward:

- the root group (embeddings, final norm, lm_head, anything outside the decoder layers) is gathered from the
  root's forward to the end of backward (train/fsdp.py shards it with reshard_after_forward=False), and its
  trainable parameters' unsharded gradients from the start of backward (lm_head's come first) to its end;
- decoder layers: 2 gathered at a time with reshard_after_forward (the one computing and the one prefetched),
  every layer without it (all stay gathered from their forward until their backward);
- one layer's unsharded gradients plus their reduce-scatter input (in the reduce dtype), for the layer with the
  most trainable parameters this step.
Every all-gather is padded to N equal shards (dim 0 rounded up to a multiple of N), as FSDP2 pads. The rule is to
be checked against CUDA peaks when a GPU is lent (scripts/gpu_check.py --fsdp prints both).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from owlore_bench.errors import UserError
from owlore_bench.train.layers import decoder_layers


@dataclass(frozen=True)
class Sharding:
    """How the estimated run is sharded: `world_size` ranks, train.reshard_after_forward, and the estimate's dtype
    (bf16 stands for a CUDA run: fp32 master shards, bf16 compute, fp32 gradient reduction, as train/fsdp.py)."""

    world_size: int
    reshard_after_forward: bool
    dtype: str

    @property
    def policy(self):
        from torch.distributed.fsdp import MixedPrecisionPolicy

        if self.dtype == "bf16":
            return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        return MixedPrecisionPolicy()

    @property
    def master_dtype(self) -> torch.dtype:
        return torch.float32  # bf16 estimates shard fp32 master weights; fp32 ones are fp32 throughout

    def shard(self, model: torch.nn.Module) -> torch.nn.Module:
        from owlore_bench.config import TrainConfig
        from owlore_bench.train.fsdp import shard_model

        return shard_model(model, TrainConfig(parallel="fsdp", reshard_after_forward=self.reshard_after_forward),
                           policy=self.policy)

    def gathered_bytes(self, model: torch.nn.Module) -> int:
        return gathered_bytes(model, self.world_size, self.reshard_after_forward, self.policy.param_dtype,
                              self.policy.reduce_dtype)


@contextlib.contextmanager
def fake_process_group(world_size: int) -> Iterator[None]:
    """This process as rank 0 of `world_size` ranks on torch's FakeProcessGroup (no communication), then none."""
    import torch.distributed as dist
    from torch.testing._internal.distributed.fake_pg import FakeStore  # registers the "fake" backend

    if dist.is_initialized():
        raise UserError("the memory estimate of a sharded run plays all ranks in one process; run `owlore-bench "
                        "memory` (or the estimate) outside torchrun")
    dist.init_process_group("fake", store=FakeStore(), rank=0, world_size=world_size)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _padded_bytes(param: torch.Tensor, world_size: int, dtype: torch.dtype) -> int:
    """Bytes of the all-gather output of one parameter: dim 0 rounded up to a multiple of the world size."""
    rows = math.ceil(param.shape[0] / world_size) * world_size if param.dim() else world_size
    return rows * math.prod(param.shape[1:]) * torch.empty((), dtype=dtype).element_size()


def gathered_bytes(model: torch.nn.Module, world_size: int, reshard_after_forward: bool,
                   param_dtype: torch.dtype | None, reduce_dtype: torch.dtype | None) -> int:
    """Bytes of all-gathered weights and unsharded gradients one rank holds at once (the module docstring's rule).
    `param_dtype` / `reduce_dtype`: the MixedPrecisionPolicy's (None: the parameter's own dtype)."""
    layers = list(decoder_layers(model))
    inside = {id(p) for layer in layers for p in layer.parameters()}

    def size(params, dtype=None) -> int:
        return sum(_padded_bytes(p, world_size, dtype or param_dtype or p.dtype) for p in params)

    root = [p for p in model.parameters() if id(p) not in inside]
    root_gradients = size(p for p in root if p.requires_grad)  # computed first in backward, reduced last
    per_layer = sorted((size(layer.parameters()) for layer in layers), reverse=True)
    gathered_layers = sum(per_layer[:2]) if reshard_after_forward else sum(per_layer)
    layer_gradients = max((size(trained) + size(trained, reduce_dtype) for layer in layers
                           if (trained := [p for p in layer.parameters() if p.requires_grad])), default=0)
    return size(root) + root_gradients + gathered_layers + layer_gradients
