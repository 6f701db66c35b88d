"""Analytic memory estimator: what a training step of a method needs, in bytes, without instantiating anything real.

The architecture is built from its config.json under torch's FakeTensorMode (tensors with shapes, dtypes and
storages but no data), then taken through exactly what the shared loop does for one step: method.prepare,
gradient checkpointing, method.build_optimizer, method.on_step_start(0), one forward (with the measured
profiler's ActivationCounter), backward and optimizer.step(). The SAME ledger functions the measured profiler
uses (weight_bytes, gradient_bytes, optimizer_bytes) then read the fake tensors. No per-method formula: a new
method in methods/ is estimated the moment it is registered. A LLaMA2-7B estimate takes seconds and < 2 GiB RAM.

Assumptions (also in the README): every sequence is `seq_len` tokens long with no padding (packed data; no
attention mask is materialised), labels on every token, one micro-batch per step, the memory of step 0 (for a
layer-sampling method: the layers its sampler draws first with this seed). With update_in_backward the same
hooks as the loop's (step_in_backward.StepInBackward) run under the fake mode: each parameter is updated and its
gradient freed inside backward, and the ledger reads the live gradients in every hook. Temporaries of the
backward pass and allocator overhead ("other" on CUDA) are not part of the ledger and not estimated.

A method whose config keeps the optimizer state of layers that leave the active set (`keep_state: true`) holds
more state at the end of a run than at step 0: `optimizer_state_kept` and `total_state_kept` (memory/kept_state.py).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from owlore_bench.errors import UserError
from owlore_bench.memory.architectures import builtin_architectures, load_architecture  # noqa: F401 (re-exported)
from owlore_bench.memory.kept_state import kept_state_bytes
from owlore_bench.memory.ledger import CATEGORIES, MemoryLedger
from owlore_bench.memory.measured import SyntheticBatches, measured_ledger, relative_error  # noqa: F401 (re-exported)
from owlore_bench.memory.sharded import Sharding, fake_process_group
from owlore_bench.registry import build_method
from owlore_bench.train.loop import seed_everything
from owlore_bench.train.optimizer_bits import with_state_bits
from owlore_bench.train.step_in_backward import StepInBackward, check_supported

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def check_shape(batch_size: int, seq_len: int) -> None:
    """One clear line for a batch size or sequence length that is not a positive number of sequences/tokens."""
    if batch_size <= 0:
        raise UserError(f"--batch-size must be a positive number of sequences (got {batch_size})")
    if seq_len <= 0:
        raise UserError(f"--seq-len must be a positive number of tokens (got {seq_len})")


@contextlib.contextmanager
def _swappable_fake_parameters(fake_mode) -> Iterator[None]:
    """Let Module.to()/.float() convert fake parameters (peft casts its adapters that way).

    torch swaps a fake parameter for its converted copy with torch.utils.swap_tensors, which refuses a tensor
    that has a weak reference; FakeTensorMode's converter memo holds one on every fake tensor it made. The memo
    is only a cache of real→fake conversions, so it is emptied before each swap. Undone on exit.
    """
    original = torch.utils.swap_tensors

    def swap_tensors(first, second):
        fake_mode.fake_tensor_converter.meta_converter.tensor_memo.clear()
        return original(first, second)

    torch.utils.swap_tensors = swap_tensors
    try:
        yield
    finally:
        torch.utils.swap_tensors = original


@contextlib.contextmanager
def _unpacked_sequences() -> Iterator[None]:
    """Tell transformers' mask builder that the fake batch holds one sequence per row (positions 0..S−1).

    On a real unpadded batch it checks the position ids, finds no packed sequences and builds no mask (SDPA runs
    with is_causal). On fake tensors it cannot read the positions, so it would materialise a B×S×S mask that a
    real run never has (and that gradient checkpointing would keep alive). Undone on exit.
    """
    import transformers.masking_utils as masking_utils

    original = masking_utils.find_packed_sequence_indices
    masking_utils.find_packed_sequence_indices = lambda position_ids: None
    try:
        yield
    finally:
        masking_utils.find_packed_sequence_indices = original


def _build_model(config, dtype: torch.dtype, device: torch.device | None = None) -> torch.nn.Module:
    """A randomly initialised model of `config`, created directly on `device` (a 7B model initialises in
    seconds on a GPU, minutes on a CPU)."""
    from transformers import AutoModelForCausalLM

    with torch.device(device) if device is not None else contextlib.nullcontext():
        return AutoModelForCausalLM.from_config(config, dtype=dtype)


def _in_backward_settings(update_in_backward: bool, parallel: str = "replicate"):
    """The loop settings an estimated step stands for: one micro-batch, and no clipping under update_in_backward."""
    from owlore_bench.config import TrainConfig

    return TrainConfig(update_in_backward=update_in_backward, grad_clip=0.0 if update_in_backward else 1.0,
                       parallel=parallel)


RATIOS_FIELD = "outlier_ratios_file"


def with_equal_outlier_ratios(method_name: str, method_config: dict[str, Any], n_layers: int,
                              folder: Path) -> dict[str, Any]:
    """The method config for estimating: a method whose config offers `outlier_ratios_file` (it would compute
    outlier ratios from real weights and calibration data) gets a file of equal ratios unless the user gave one.

    Equal ratios make outlier sampling uniform; for a model whose decoder layers are all the same size, which γ
    layers are drawn does not change the memory. The same file is used by measure_memory, so estimate and
    measurement draw the same layers with the same seed.
    """
    from owlore_bench.registry import get_method_class

    if RATIOS_FIELD not in get_method_class(method_name).Config.model_fields or method_config.get(RATIOS_FIELD):
        return method_config
    path = folder / f"equal_outlier_ratios_{n_layers}.txt"
    path.write_text("1.0\n" * n_layers)
    return {**method_config, RATIOS_FIELD: str(path)}


def _prepare(method_name: str, method_config: dict[str, Any], model: torch.nn.Module, grad_checkpointing: bool,
             seed: int):
    """method.prepare + checkpointing + optimizer, in the order train.run.train_run and loop.train use."""
    with tempfile.TemporaryDirectory(prefix="owlore-estimate-") as folder:
        config = with_equal_outlier_ratios(method_name, method_config, model.config.num_hidden_layers, Path(folder))
        method = build_method(method_name, config, seed=seed)
        seed_everything(seed)  # as train.run.train_run: adapter initialisation draws random numbers
        model = method.prepare(model)
    if grad_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    model.train()
    return method, model


def estimate_memory(architecture: Any, method_name: str, method_config: dict[str, Any] | None = None,
                    batch_size: int = 16, seq_len: int = 512, dtype: str = "bf16", grad_checkpointing: bool = False,
                    seed: int = 0, update_in_backward: bool = False, optimizer_state_bits: int = 32,
                    offload_activations: bool = False, steps: int | None = None, world_size: int = 1,
                    parallel: str = "replicate", reshard_after_forward: bool = True) -> dict[str, int]:
    """Estimated ledger of one training step of one rank, in bytes: weights, gradients, optimizer, activations,
    total. batch_size is per rank; `replicate` ranks each hold what one process holds. Under `fsdp` the model is
    sharded over `world_size` fake ranks (memory/sharded.py; bf16 = fp32 master shards, bf16 compute) and the
    estimate adds `gathered`, the all-gathered buffers in flight, which `total` includes.

    Also `trainable_params` (count); with offload_activations also `activations_offloaded` (host bytes, as if on
    an accelerator: every saved tensor but the parameters leaves the device, checkpointed layer inputs stay).
    For a method that keeps the state of leaving layers (keep_state) also `optimizer_state_kept` and
    `total_state_kept`: the optimizer state and the total at the end of a `steps`-step run (bytes; steps=None: the
    bound, state for every parameter the optimizer holds).
    Raises UserError for an unknown architecture, a bad shape or a method config the method rejects.
    """
    check_shape(batch_size, seq_len)  # one line before TrainConfig sees the numbers
    return estimate_train_memory(architecture, method_name, method_config,
                                 estimate_settings(batch_size, seq_len, dtype, grad_checkpointing=grad_checkpointing,
                                                   seed=seed, update_in_backward=update_in_backward,
                                                   optimizer_state_bits=optimizer_state_bits,
                                                   offload_activations=offload_activations, steps=steps,
                                                   parallel=parallel, reshard_after_forward=reshard_after_forward),
                                 world_size)


def estimate_settings(batch_size: int, seq_len: int, dtype: str, steps: int | None = None, **train: Any):
    """The TrainConfig an estimated step stands for: `seq_len` tokens a row (max_length), `steps` None = the kept
    state's bound (TrainConfig itself would default it to 40), no clipping under update_in_backward."""
    from owlore_bench.config import TrainConfig

    clip = {"grad_clip": 0.0} if train.get("update_in_backward") else {}
    return TrainConfig(batch_size=batch_size, dtype=dtype, **clip, **train).model_copy(
        update={"max_length": seq_len, "steps": steps})  # no re-validation: a 1-token shape is a valid estimate


def estimate_train_memory(architecture: Any, method_name: str, method_config: dict[str, Any] | None,
                          train: Any, world_size: int = 1) -> dict[str, int]:
    """estimate_memory for a run's own TrainConfig (`train`; max_length = the tokens of a row, dtype bf16 or fp32,
    steps = the run's steps), as the runner's plan has it: the same ledger, bytes."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    check_shape(train.batch_size, train.max_length)
    config = load_architecture(architecture)
    sharding = Sharding(world_size, train.reshard_after_forward, train.dtype) if train.parallel == "fsdp" else None
    check_supported(build_method(method_name, method_config or {}),
                    _in_backward_settings(train.update_in_backward, train.parallel),
                    world_size)  # a method refused on N ranks or sharded: its one line, not a fake-tensor crash
    try:
        with fake_process_group(world_size) if sharding else contextlib.nullcontext():
            return _fake_step(config, method_name, method_config or {}, train,
                              FakeTensorMode(allow_non_fake_inputs=True), sharding)
    except (UserError, MemoryError):
        raise
    except Exception as error:  # a hook that needs real values (data-dependent) cannot run on fake tensors
        raise UserError(f"{method_name}: cannot be estimated on fake tensors ({type(error).__name__}: "
                        f"{str(error).splitlines()[0] if str(error) else ''}); give the method a config whose hooks "
                        f"need no real weights or data (see `owlore-bench methods`)") from error


def _fake_step(config, method_name: str, method_config: dict[str, Any], train: Any, fake_mode,
               sharding: Sharding | None = None) -> dict[str, int]:
    """One loop-shaped training step on fake tensors, shaped and set by the TrainConfig `train`; the ledger it
    records (bytes)."""
    batch_size, seq_len, seed, offload = train.batch_size, train.max_length, train.seed, train.offload_activations
    with _swappable_fake_parameters(fake_mode), fake_mode:
        model = _build_model(config, sharding.master_dtype if sharding else DTYPES[train.dtype])
        method, model = _prepare(method_name, method_config, model, train.grad_checkpointing, seed)
        model = sharding.shard(model) if sharding else model
        optimizer = method.build_optimizer(model, lr=1e-4, weight_decay=0.0)
    # outside: bnb fills its quantile maps from data
    optimizer = with_state_bits(optimizer, train.optimizer_state_bits, method_name)
    # Outside the fake mode, as in the loop: any torch random draw of a method's step hook is a real number.
    seed_everything(seed)
    method.on_step_start(0, model, optimizer)
    with fake_mode:
        ledger = MemoryLedger(model, optimizer, enabled=True, offload_activations="assumed" if offload else False)
        ledger.begin_step()
        input_ids = torch.randint(0, config.vocab_size, (batch_size, seq_len))
        with ledger.forward(), _unpacked_sequences():
            # attention_mask=None: a mask of ones cannot be seen to be all ones on fake data, so it would be
            # materialised; a real unpadded batch skips it, and so does this.
            loss = model(input_ids=input_ids, labels=input_ids).loss
        if train.update_in_backward:
            with StepInBackward(optimizer, on_gradient=ledger.after_gradient):  # after on_step_start, as the loop
                loss.backward()
        else:
            loss.backward()
            ledger.after_backward()
            optimizer.step()
        row = ledger.end_step()
    estimate = {category: row[f"mem_{category}_bytes"] for category in (*CATEGORIES, "total")}
    if offload:
        estimate["activations_offloaded"] = row["mem_activations_offloaded_bytes"]
    if sharding:
        estimate["gathered"] = sharding.gathered_bytes(model)
        estimate["total"] += estimate["gathered"]
    estimate["trainable_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if getattr(method.config, "keep_state", False):
        kept = kept_state_bytes(model, method, optimizer, fake_mode, train.steps)
        estimate.update(optimizer_state_kept=kept, total_state_kept=estimate["total"] - estimate["optimizer"] + kept)
    return estimate


def measure_memory(architecture: Any, method_name: str, method_config: dict[str, Any] | None = None,
                   batch_size: int = 16, seq_len: int = 512, dtype: str = "bf16", grad_checkpointing: bool = False,
                   seed: int = 0, steps: int = 3, device: str = "auto",
                   update_in_backward: bool = False, optimizer_state_bits: int = 32,
                   offload_activations: bool = False, parallel: str = "replicate",
                   reshard_after_forward: bool = True) -> dict[str, Any]:
    """Run `steps` real training steps of the architecture (random weights: memory does not depend on their
    values) through the shared loop with the measured profiler; returns the loop's summary (status, peak_mem_*).
    Under torchrun every rank calls it (batch_size per rank); `fsdp` shards the model over them after prepare.
    """
    from owlore_bench.config import TrainConfig
    from owlore_bench.models import resolve_device
    from owlore_bench.train import distributed
    from owlore_bench.train.fsdp import load_dtype, shard_model
    from owlore_bench.train.loop import train

    check_shape(batch_size, seq_len)
    config = load_architecture(architecture)
    target = resolve_device(device)
    cfg = TrainConfig(steps=steps, batch_size=batch_size, max_length=max(2, seq_len), dtype=dtype, parallel=parallel,
                      reshard_after_forward=reshard_after_forward,
                      device=target.type, grad_checkpointing=grad_checkpointing, seed=seed, progress=False,
                      schedule="constant", update_in_backward=update_in_backward,
                      optimizer_state_bits=optimizer_state_bits, offload_activations=offload_activations,
                      grad_clip=0.0 if update_in_backward else 1.0)
    seed_everything(seed)
    model = _build_model(config, DTYPES[load_dtype(cfg, target)], target)  # fsdp on CUDA: fp32 master weights
    method, model = _prepare(method_name, method_config or {}, model, grad_checkpointing=False, seed=seed)
    own_group = parallel == "fsdp" and not distributed.is_distributed()  # one process: shard_model starts a group
    model = shard_model(model, cfg) if parallel == "fsdp" else model
    with tempfile.TemporaryDirectory(prefix="owlore-measure-") as out_dir:
        summary = train(model, method, SyntheticBatches(config.vocab_size, seq_len, seed), cfg, out_dir)
    if own_group:
        distributed.shutdown()
    del model, method
    with contextlib.suppress(Exception):
        torch.cuda.empty_cache()
    return summary
