"""THE training loop. Every method runs through it; it never names one.

One optimizer step = `grad_accum` micro-batches of forward + backward, gradient clipping, optimizer step, LR
schedule step. Each step writes one line to metrics.jsonl (step, loss, lr, tokens, tokens_per_s, elapsed_s,
load_1m, the memory ledger in bytes, and whatever the method's on_step_start returned; with train.time_phases also
forward_s, backward_s and update_s, see owlore_bench/train/phases.py). A non-finite loss stops the run
with status `diverged`; running out of memory stops it with status `oom`.

Under torchrun each rank takes its rows of every global batch (batch_size x world rows), the gradients are
averaged over ranks after backward, and only rank 0 writes files (owlore_bench/train/distributed.py). With
train.update_in_backward each parameter is updated inside backward instead (owlore_bench/train/step_in_backward.py).
train.optimizer_state_bits: 8 swaps the method's AdamW for bitsandbytes' AdamW8bit (train/optimizer_bits.py);
train.offload_activations keeps the tensors saved for backward on the host (the ledger's forward() does it).
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from owlore_bench.config import TrainConfig
from owlore_bench.errors import one_line
from owlore_bench.memory.ledger import MemoryLedger
from owlore_bench.method import Method
from owlore_bench.results import MetricsLog, load_average, machine_load, steady_tokens_per_s
from owlore_bench.train import distributed
from owlore_bench.train.checkpoint import load_checkpoint, save_checkpoint
from owlore_bench.train.data import TrainingData
from owlore_bench.train.optimizer_bits import check_state_bits, with_state_bits
from owlore_bench.train.phases import PhaseTimer
from owlore_bench.train.step_in_backward import StepInBackward, check_supported
from owlore_bench.train.steps import resolve_steps
from owlore_bench.train.tracking import open_trackers


def lr_lambda(cfg: TrainConfig):
    """LR multiplier at a step: linear warmup from 0, then constant / linear to 0 / cosine to 0."""

    def multiplier(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / (cfg.warmup_steps + 1)
        progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        if cfg.schedule == "linear":
            return max(0.0, 1.0 - progress)
        if cfg.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return 1.0

    return multiplier


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA). Call before method.prepare: adapter initialisation draws random numbers."""
    torch.manual_seed(seed)


def failure_status(error: BaseException) -> str:
    """A failed run's summary status: 'oom' when `error` ran out of memory (CUDA, or host RAM), else 'failed'."""
    out_of_memory = isinstance(error, torch.cuda.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and ("out of memory" in str(error) or "can't allocate memory" in str(error))
    )
    return "oom" if out_of_memory else "failed"


def trainable_parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@dataclass
class _Run:
    """What one training run holds between steps (built once by _set_up)."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    metrics: MetricsLog
    ledger: MemoryLedger
    phases: PhaseTimer
    in_backward: StepInBackward | None
    params: list[torch.nn.Parameter]
    start_step: int
    elapsed_s: float


def train(model: torch.nn.Module, method: Method, data: TrainingData, cfg: TrainConfig,
          out_dir: str | Path) -> dict[str, Any]:
    """Train `model` (already through method.prepare) for cfg.steps (or cfg.epochs passes over `data`); resumes
    from out_dir/checkpoint if present.

    Returns the training summary: status, steps done, final_loss, trainable_params (max over steps), tokens_per_s
    (median of the steady-state steps; tokens_per_s_overall: all tokens over all step time), the machine's load
    (load_avg_1m, load_avg_1m_max, cpu_count: results.machine_load), wall_s (training seconds, summed over resumed
    segments) and the peak memory ledger (bytes). A step that raises ends the run as 'oom' or 'failed' with a
    one-line error; the traceback goes to out_dir/error.log.
    """
    out_dir = Path(out_dir)
    device = next(model.parameters()).device
    cfg = _checked(cfg, data, method, device)
    try:  # a method whose optimizer cannot be built for this model fails as data, like a failing step
        run = _set_up(model, method, cfg, out_dir)
    except Exception as caught:  # noqa: BLE001
        return _failed_set_up(model, caught, out_dir)
    status, error = "ok", None
    bar = tqdm(total=cfg.steps, initial=run.start_step, desc=method.name, leave=False,
               disable=not (cfg.progress and distributed.is_main()))
    try:
        for step in range(run.start_step, cfg.steps):
            extra = method.on_step_start(step, model, run.optimizer)
            distributed.check_same_trainable(model, step, extra)
            if run.in_backward is not None:
                run.in_backward.refresh()  # hooks follow the trainable set (a layer switch moves them)
            started = time.perf_counter()
            run.ledger.begin_step()
            run.phases.begin_step()
            loss_sum, tokens = _forward_backward(model, data, cfg, run, step, device)
            if not math.isfinite(loss_sum):
                status = "diverged"
                run.metrics.write({"step": step, "loss": loss_sum, "status": status})
                break
            lr = run.scheduler.get_last_lr()[0]
            _update(run, cfg)
            if device.type == "cuda":
                torch.cuda.synchronize()  # sync point: without it the step time misses queued kernels
            step_s = time.perf_counter() - started
            memory = distributed.gather_memory(run.ledger.end_step())  # after the step: sees fresh optimizer state
            run.elapsed_s += step_s
            run.metrics.write({"step": step, "loss": loss_sum, "lr": lr, "tokens": int(tokens),
                               "tokens_per_s": tokens / step_s, "step_s": step_s, "elapsed_s": run.elapsed_s,
                               "load_1m": load_average(),  # a contended machine shows here (results.machine_load)
                               "trainable_params": trainable_parameter_count(model),
                               **run.phases.row(), **memory, **extra})
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum:.3f}")
            _checkpoint_if_due(step + 1, cfg, run, model, method, out_dir)
    except Exception as caught:  # noqa: BLE001 — an OOM is data in a memory benchmark; anything else is 'failed'
        status, error = _failure_as_data(caught, out_dir)
        run.optimizer.zero_grad(set_to_none=True)
    finally:
        if run.in_backward is not None:
            run.in_backward.remove()
        bar.close()
        run.metrics.close()
    return _summary(model, run, status, error)


def _set_up(model: torch.nn.Module, method: Method, cfg: TrainConfig, out_dir: Path) -> _Run:
    """Optimizer, schedule, resumed state, metrics log, memory ledger, phase timer and in-backward hooks."""
    if cfg.grad_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    model.train()
    optimizer = method.build_optimizer(model, lr=cfg.lr, weight_decay=cfg.weight_decay)
    optimizer = with_state_bits(optimizer, cfg.optimizer_state_bits, method.name)  # 8: bnb AdamW8bit, same groups
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg))
    start_step, elapsed_s = load_checkpoint(out_dir / "checkpoint", model=model, optimizer=optimizer,
                                            scheduler=scheduler, method=method)
    distributed.check_same("the step resumed from", start_step,
                           "every rank must see rank 0's checkpoint: put the output folder on a shared filesystem")
    if start_step == 0:
        seed_everything(cfg.seed)
    main = distributed.is_main()
    metrics = MetricsLog(out_dir / "metrics.jsonl" if main else None, resume_step=start_step,
                         trackers=open_trackers(cfg.report_to, out_dir) if main else None)
    snapshot = out_dir / "cuda_memory_snapshot.pickle" if cfg.cuda_memory_snapshot and main else None
    ledger = MemoryLedger(model, optimizer, enabled=cfg.memory_profile, cuda_snapshot=snapshot,
                          offload_activations=cfg.offload_activations)  # its forward() does the offloading
    in_backward = StepInBackward(optimizer, on_gradient=ledger.after_gradient) if cfg.update_in_backward else None
    return _Run(optimizer=optimizer, scheduler=scheduler, metrics=metrics, ledger=ledger,
                phases=PhaseTimer(next(model.parameters()).device, enabled=cfg.time_phases),
                in_backward=in_backward, params=[p for group in optimizer.param_groups for p in group["params"]],
                start_step=start_step, elapsed_s=elapsed_s)


def _forward_backward(model: torch.nn.Module, data: TrainingData, cfg: TrainConfig, run: _Run, step: int,
                      device: torch.device) -> tuple[float, int]:
    """The step's micro-batches, forward and backward, gradients averaged over ranks: (mean loss, tokens)."""
    global_rows = cfg.batch_size * distributed.world_size()  # every rank builds the same global batch
    loss_sum, tokens = 0.0, 0
    for micro in range(cfg.grad_accum):
        batch, loss_scale = distributed.shard_batch(data.batch(step * cfg.grad_accum + micro, global_rows))
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        with run.phases.phase("forward"), run.ledger.forward():  # offload_activations: saved tensors to host
            loss = model(**batch).loss
            if cfg.grad_accum > 1:  # no division by 1: the official step's forward has none (compare_forward_ops.py)
                loss = loss / cfg.grad_accum
        if loss_scale != 1.0:
            loss = loss * loss_scale  # this rank's share of the global token mean (distributed.py)
        with run.phases.phase("backward"):
            loss.backward()  # with update_in_backward this also runs the optimizer, parameter by parameter
        loss_sum += loss.item()  # sync point: one per micro-batch, needed to spot divergence early
        tokens += int(batch["attention_mask"].sum())
    run.ledger.after_backward()
    distributed.average_gradients(run.params)
    loss_sum, tokens = distributed.sum_over_ranks(loss_sum, tokens)
    return loss_sum / distributed.world_size(), tokens


def _update(run: _Run, cfg: TrainConfig) -> None:
    """Clip, optimizer step (unless it already ran in backward), schedule step, free the gradients."""
    with run.phases.phase("update"):
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(run.params, cfg.grad_clip)
        if run.in_backward is None:
            run.optimizer.step()
        run.scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)


def _summary(model: torch.nn.Module, run: _Run, status: str, error: str | None) -> dict[str, Any]:
    finished = [row for row in run.metrics.rows if "tokens_per_s" in row]
    train_s = sum(row["step_s"] for row in finished)
    return {
        "status": status,
        "error": error,
        "steps": len(finished),
        "final_loss": finished[-1]["loss"] if finished else None,
        "trainable_params": max((row["trainable_params"] for row in finished),
                                default=trainable_parameter_count(model)),
        "tokens_per_s": steady_tokens_per_s(finished),  # median of the steps after warm-up
        "tokens_per_s_overall": sum(row["tokens"] for row in finished) / train_s if train_s else None,
        "wall_s": run.elapsed_s,
        **machine_load(finished),
        **peak_memory(finished),
    }


def _checked(cfg: TrainConfig, data: TrainingData, method: Method, device: torch.device) -> TrainConfig:
    """`cfg` with train.epochs resolved to steps (the LR schedule uses them), after the one-line refusals of a
    method / setting pair and of 8-bit state where bitsandbytes cannot run."""
    cfg = resolve_steps(cfg, data, distributed.world_size())
    check_supported(method, cfg, distributed.world_size())
    check_state_bits(cfg.optimizer_state_bits, device)
    return cfg


def _failure_as_data(error: BaseException, out_dir: Path) -> tuple[str, str]:
    """(status, one-line error naming out_dir/error.log) of a run that raised. Under several processes the error is
    raised instead: the other ranks wait in a collective, and only ending this process (torchrun stops them) frees
    them."""
    if distributed.world_size() > 1 and not isinstance(error, distributed.RanksDisagree):
        raise error
    return failure_status(error), f"{one_line(error)} (traceback: {write_error_log(out_dir)})"


def _checkpoint_if_due(done: int, cfg: TrainConfig, run: _Run, model: torch.nn.Module, method: Method,
                       out_dir: Path) -> None:
    """Save out_dir/checkpoint after `done` steps when checkpoint_every says so (never after the last step). Every
    rank calls it: FSDP's shards are saved by all of them, a replicated model by rank 0 alone."""
    if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < cfg.steps:
        save_checkpoint(out_dir / "checkpoint", step=done, elapsed_s=run.elapsed_s, model=model,
                        optimizer=run.optimizer, scheduler=run.scheduler, method=method)


def _failed_set_up(model: torch.nn.Module, error: BaseException, out_dir: Path) -> dict[str, Any]:
    """The summary of a run whose set-up (optimizer, checkpoint, logs) raised: no step taken, traceback in error.log.
    Under several processes the error is raised instead (the other ranks wait in a collective)."""
    status, message = _failure_as_data(error, out_dir)
    return {"status": status, "error": message, "steps": 0, "final_loss": None,
            "trainable_params": trainable_parameter_count(model), "tokens_per_s": None, "wall_s": 0.0}


def write_error_log(out_dir: Path) -> Path:
    """The traceback being handled, into out_dir/error.log (kept for a bug report); returns the path."""
    path = Path(out_dir) / "error.log"
    if distributed.is_main():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(traceback.format_exc())
    return path


def peak_memory(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """`peak_mem_<category>_bytes`: the maximum of each per-step ledger field over the run (resumed parts
    included); under data parallel (max over ranks) also `peak_memory_by_rank`, each rank's own peaks."""
    keys = {key for row in rows for key in row if key.startswith("mem_")}
    peaks: dict[str, Any] = {f"peak_{key}": max(row.get(key, 0) for row in rows) for key in sorted(keys)}
    per_rank = [row["memory_by_rank"] for row in rows if "memory_by_rank" in row]
    if per_rank:
        peaks["peak_memory_by_rank"] = [peak_memory(list(ledgers)) for ledgers in zip(*per_rank)]
    return peaks
