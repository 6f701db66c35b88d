"""Step arithmetic of a run: rows per global batch, steps per epoch, train.epochs -> steps, and the data facts
(records, tokens, steps per epoch, tokens per step) that --dry-run prints and summary.json keeps."""

from __future__ import annotations

import math

from owlore_bench.config import TrainConfig
from owlore_bench.train.data import TrainingData


def global_batch(cfg: TrainConfig, world_size: int = 1) -> int:
    """Sequences (or packed blocks) per optimizer step: batch_size x grad_accum x processes."""
    return cfg.batch_size * cfg.grad_accum * world_size


def steps_per_epoch(examples: int, cfg: TrainConfig, world_size: int = 1) -> int:
    """Whole global batches in one pass. The last partial batch is dropped so every step has the same shape
    (HF Trainer, hence LMFlow, runs it as a smaller batch: at most one step more per epoch)."""
    return max(1, examples // global_batch(cfg, world_size))


def resolve_steps(cfg: TrainConfig, data: TrainingData, world_size: int = 1) -> TrainConfig:
    """The config the loop runs: with train.epochs, steps = ceil(epochs x steps_per_epoch) (HF Trainer's
    rounding) and each epoch starts a fresh permutation on a step boundary; with train.steps, unchanged."""
    if cfg.epochs is None:
        return cfg
    per_epoch = steps_per_epoch(len(data), cfg, world_size)
    data.epoch_rows = min(len(data), per_epoch * global_batch(cfg, world_size))
    # model_copy skips validation on purpose: the resolved copy carries both epochs and the derived steps.
    return cfg.model_copy(update={"steps": math.ceil(cfg.epochs * per_epoch)})


def data_facts(records: int, data: TrainingData, cfg: TrainConfig, packed: bool, world_size: int = 1) -> dict:
    """What --dry-run prints and summary.json keeps: records, tokens (in the sequences or blocks trained on),
    blocks (packed) or sequences, steps per epoch and tokens per step (packed: exact; unpacked: the mean)."""
    tokens = sum(len(e.input_ids) for e in data.examples)
    per_step = global_batch(cfg, world_size) * tokens / len(data)
    return {"records": records, "tokens": tokens, "blocks" if packed else "sequences": len(data),
            "steps_per_epoch": steps_per_epoch(len(data), cfg, world_size),
            "tokens_per_step": round(per_step) if packed else round(per_step, 1)}
