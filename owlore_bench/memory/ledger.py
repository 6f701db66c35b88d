"""Measured memory profiler: a per-step ledger in bytes of where training memory goes.

Categories (bytes): weights (every parameter, tied ones once), gradients (.grad tensors that exist),
optimizer (every tensor in optimizer.state, GaLore projectors included), activations (tensors saved for
backward during the forward, deduplicated by storage, parameters and their views excluded; under gradient
checkpointing also the layer inputs the checkpoints keep), total (their sum). With train.offload_activations
the saved tensors that went to host memory are `activations_offloaded` (host bytes, not in total). A tensor
counts with its whole storage: a view keeps all of its base alive. On CUDA also torch.cuda.max_memory_allocated /
max_memory_reserved per step and `other` = CUDA peak − ledger; on CPU the process peak RSS. Optionally the CUDA
allocator timeline of the first steps (CudaSnapshot; env OWLORE_BENCH_CUDA_SNAPSHOT=file.pickle).
The estimator (owlore_bench/memory/estimate.py) runs these same functions on fake tensors.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

CATEGORIES = ("weights", "gradients", "optimizer", "activations")


def storage_key(tensor: torch.Tensor) -> tuple[str, int]:
    """Identity of the storage behind `tensor`. The StorageImpl address (`_cdata`), not data_ptr(): fake tensors
    (the estimator's FakeTensorMode) all report data_ptr 0, and views share their base's StorageImpl."""
    return (str(tensor.device), tensor.untyped_storage()._cdata)


def _storage_bytes(tensors: Iterator[torch.Tensor]) -> int:
    """Bytes of the distinct storages behind `tensors` (a view of a counted storage adds nothing)."""
    seen: dict[tuple[str, int], int] = {}
    for tensor in _dense_parts(tensors):
        if tensor.device.type != "meta":
            seen.setdefault(storage_key(tensor), tensor.untyped_storage().nbytes())
    return sum(seen.values())


def _dense_parts(tensors: Iterator[torch.Tensor]) -> Iterator[torch.Tensor]:
    """Each tensor, or for a sparse COO one (BAdam's ratio mode keeps sparse gradients) its indices and values,
    the storages it actually holds (a sparse tensor has no untyped_storage of its own); for a DTensor
    (train.parallel fsdp) this rank's local shard, the memory this rank holds."""
    for tensor in tensors:
        tensor = local_part(tensor)
        if tensor.layout == torch.sparse_coo:
            yield from (tensor._indices(), tensor._values())
        else:
            yield tensor


def local_part(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a DTensor (FSDP's parameters, gradients, optimizer state; a view of a padded storage,
    counted whole); any other tensor itself."""
    to_local = getattr(tensor, "to_local", None)
    if to_local is None:
        return tensor
    with torch.no_grad():
        return to_local()


def weight_bytes(model: torch.nn.Module) -> int:
    return _storage_bytes(p.data for p in model.parameters())


def gradient_bytes(model: torch.nn.Module) -> int:
    return _storage_bytes(p.grad for p in model.parameters() if p.grad is not None)


def _state_tensors(value: Any, depth: int = 0) -> Iterator[torch.Tensor]:
    """Every tensor reachable from an optimizer-state value (dicts, lists, and objects such as GaLore's projector)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif depth < 3 and isinstance(value, dict):
        for item in value.values():
            yield from _state_tensors(item, depth + 1)
    elif depth < 3 and isinstance(value, (list, tuple)):
        for item in value:
            yield from _state_tensors(item, depth + 1)
    elif depth < 3 and hasattr(value, "__dict__") and not isinstance(value, type):
        for item in vars(value).values():
            yield from _state_tensors(item, depth + 1)


def optimizer_bytes(optimizer: torch.optim.Optimizer) -> int:
    # GaLoreProjector keeps its matrix on the object (`ortho_matrix`), not in a dict: walk objects too.
    return _storage_bytes(t for state in optimizer.state.values() for t in _state_tensors(state))


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (bytes; Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _tensors_in(values: Iterable[Any]) -> Iterator[torch.Tensor]:
    for value in values:
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, (list, tuple)):
            yield from _tensors_in(value)


def _is_checkpointing(module: torch.nn.Module) -> bool:
    """True for a layer that HF gradient checkpointing recomputes (GradientCheckpointingLayer with it switched on)."""
    return getattr(module, "gradient_checkpointing", False) is True and module.training


class ActivationCounter:
    """Counts bytes of tensors saved for backward inside `with counter:` via saved_tensors_hooks.

    Parameters and views of parameters are excluded (they are weights); storages are counted once. The pack hook
    returns the tensor detached (the same storage and version counter, no grad_fn), so autograd computes exactly
    what it computes without the counter: returning the tensor itself would tie an op's saved output to its own
    grad_fn, a cycle through C++ that no garbage collection frees (a forward without backward would leak it).
    Under gradient checkpointing the recomputed layers save nothing through the hooks, but checkpointing keeps
    each such layer's inputs (its hidden states) alive until backward: those are counted too, through a
    forward pre-hook on every layer whose `gradient_checkpointing` flag is on.

    `offload` (train.offload_activations): "host" packs every saved tensor but the parameters with torch's own
    save_on_cpu hooks (only one pair of saved-tensor hooks is active at a time, so the counter must be the one
    that offloads; save_on_cpu alone would also copy every weight to the host each step); what really moved is
    `offloaded_bytes` (one host copy per saved tensor, as save_on_cpu makes), and a tensor already on the CPU,
    which does not move, stays a device activation: on CPU offloading saves nothing. "assumed" (the estimator's
    fake tensors stand for an accelerator run) counts what would move without moving it.
    """

    def __init__(self, model: torch.nn.Module, offload: str | None = None):
        self.model, self.offload = model, offload
        self.sharded = any(hasattr(p, "to_local") for p in model.parameters())  # FSDP: parameters are DTensors
        self.saved: dict[tuple[str, int], int] = {}
        self.offloaded_bytes = 0
        self._parameter_storages: set[tuple[str, int]] = set()
        if offload == "host":
            to_host = torch.autograd.graph.save_on_cpu(pin_memory=torch.cuda.is_available())
            self._to_host, self._from_host = to_host.pack_hook, to_host.unpack_hook
        unpack = self._unpack if offload == "host" else (lambda tensor: tensor)
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, unpack)
        self._handles: list[Any] = []

    def _count(self, tensor: torch.Tensor) -> None:
        if tensor.device.type != "meta":
            key = storage_key(tensor)
            if key not in self._parameter_storages:
                self.saved.setdefault(key, tensor.untyped_storage().nbytes())

    def _pack(self, tensor: torch.Tensor) -> Any:
        if self.offload is None or tensor.device.type == "meta" or storage_key(tensor) in self._parameter_storages:
            self._count(tensor)
            return tensor.detach() if self.offload != "host" else (False, tensor.detach())
        if self.offload == "assumed":
            self.offloaded_bytes += tensor.numel() * tensor.element_size()
            return tensor.detach()
        device, packed = self._to_host(tensor.detach())  # on the CPU save_on_cpu keeps the tensor it is given
        if packed.untyped_storage()._cdata == tensor.untyped_storage()._cdata:
            self._count(tensor)  # already on the CPU: nothing moved
        else:
            self.offloaded_bytes += packed.untyped_storage().nbytes()
        return True, (device, packed)

    def _unpack(self, packed: tuple[bool, Any]) -> torch.Tensor:
        offloaded, value = packed
        return self._from_host(value) if offloaded else value

    def _note_parameters(self, module: torch.nn.Module, args: tuple) -> None:
        """Before a leaf module runs under FSDP: its parameters now are the all-gathered (unsharded) weights, so
        what autograd saves of them is weights, not activations (the estimator counts gathered buffers apart)."""
        for param in module.parameters(recurse=False):
            if param.device.type != "meta":
                self._parameter_storages.add(storage_key(local_part(param)))

    def _count_checkpoint_inputs(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        if torch.is_grad_enabled() and _is_checkpointing(module):
            for tensor in _tensors_in((*args, *kwargs.values())):
                self._count(tensor)

    def __enter__(self) -> ActivationCounter:
        self.saved, self.offloaded_bytes = {}, 0
        self._parameter_storages = {storage_key(local_part(p)) for p in self.model.parameters()
                                    if p.device.type != "meta"}
        self._handles = [module.register_forward_pre_hook(self._count_checkpoint_inputs, with_kwargs=True)
                         for module in self.model.modules() if _is_checkpointing(module)]
        if self.sharded:
            self._handles += [module.register_forward_pre_hook(self._note_parameters)
                              for module in self.model.modules() if next(module.parameters(False), None) is not None]
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._hooks.__exit__(*exc)
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @property
    def bytes(self) -> int:
        return sum(self.saved.values())


SNAPSHOT_ENV = "OWLORE_BENCH_CUDA_SNAPSHOT"
SNAPSHOT_STEPS = 2  # the first step allocates optimizer state, the second shows the steady state


class CudaSnapshot:
    """Records the CUDA allocator's history for the first SNAPSHOT_STEPS steps and dumps it to `path` (a pickle
    for https://pytorch.org/memory_viz). Costs a stack trace per allocation while recording: off by default."""

    def __init__(self, path: str | Path):
        self.path, self.steps = Path(path), 0

    def begin_step(self) -> None:
        if self.steps == 0:
            torch.cuda.memory._record_memory_history(max_entries=1_000_000)

    def end_step(self) -> None:
        self.steps += 1
        if self.steps == SNAPSHOT_STEPS:
            self.dump()

    def dump(self) -> None:
        """Write the snapshot (also after fewer steps, e.g. a run of one step or an OOM) and stop recording."""
        if 0 < self.steps <= SNAPSHOT_STEPS and not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            torch.cuda.memory._dump_snapshot(str(self.path))
            torch.cuda.memory._record_memory_history(enabled=None)


class MemoryLedger:
    """Per-step memory ledger used by the shared loop for every method. `enabled=False` makes it free.

    `cuda_snapshot`: a file to write the CUDA allocator timeline of the first steps to (default: the path in
    the environment variable OWLORE_BENCH_CUDA_SNAPSHOT, if set; ignored off CUDA). `offload_activations`:
    forward() also moves the saved tensors to the host (ActivationCounter's "host" mode; "assumed" for fake tensors),
    enabled or not.
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, enabled: bool = True,
                 cuda_snapshot: str | Path | None = None, offload_activations: bool | str = False):
        self.model, self.optimizer, self.enabled = model, optimizer, enabled
        self.offload = {True: "host", False: None}.get(offload_activations, offload_activations)
        self.cuda = enabled and next(model.parameters()).device.type == "cuda"
        self._step: dict[str, int] = {}
        self._counter = ActivationCounter(model, offload=self.offload)
        snapshot_path = cuda_snapshot or os.environ.get(SNAPSHOT_ENV)
        self.snapshot = CudaSnapshot(snapshot_path) if self.cuda and snapshot_path else None
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()

    def begin_step(self) -> None:
        if self.enabled:
            self._step = {"activations": 0, "gradients": 0, **({"activations_offloaded": 0} if self.offload else {})}
            if self.snapshot:
                self.snapshot.begin_step()

    @contextlib.contextmanager
    def forward(self) -> Iterator[None]:
        """Wrap one micro-batch's forward: counts the activations it saves for backward (and offloads them)."""
        if not self.enabled and not self.offload:
            yield
            return
        with self._counter:
            yield
        if self.enabled:
            self._step["activations"] = max(self._step["activations"], self._counter.bytes)
        if self.enabled and self.offload:
            self._step["activations_offloaded"] = max(self._step["activations_offloaded"],
                                                      self._counter.offloaded_bytes)

    def after_backward(self) -> None:
        if self.enabled:
            self._step["gradients"] = max(self._step["gradients"], gradient_bytes(self.model))

    def after_gradient(self, param: torch.nn.Parameter) -> None:
        """Inside an update_in_backward hook: only `param`'s gradient is alive (each earlier one was freed by
        its own hook), so the live gradient bytes are its storage's. O(1) per hook: walking every .grad here
        made a step quadratic in the parameter count. after_backward, once per step, still sees any gradient
        of a parameter the optimizer does not hold."""
        if self.enabled and param.grad is not None:
            self._step["gradients"] = max(self._step["gradients"], _storage_bytes(iter([param.grad])))

    def end_step(self) -> dict[str, int]:
        """This step's ledger as `mem_<category>_bytes` fields (empty when disabled)."""
        if not self.enabled:
            return {}
        ledger = {"weights": weight_bytes(self.model), "optimizer": optimizer_bytes(self.optimizer), **self._step}
        ledger["total"] = sum(ledger[c] for c in CATEGORIES)
        if self.cuda:
            ledger["cuda_max_allocated"] = torch.cuda.max_memory_allocated()
            ledger["cuda_max_reserved"] = torch.cuda.max_memory_reserved()
            ledger["other"] = max(0, ledger["cuda_max_allocated"] - ledger["total"])
            torch.cuda.reset_peak_memory_stats()
            if self.snapshot:
                self.snapshot.end_step()
        else:
            ledger["rss"] = peak_rss_bytes()  # the process peak so far
        return {f"mem_{key}_bytes": value for key, value in ledger.items()}
