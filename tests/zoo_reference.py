"""The by-hand side of the zoo's equivalence tests: the same tiny batches the loop sees, and a package's own
optimizer stepped the way the loop steps (LR per step, clip to norm 1 over the optimizer's parameters)."""

from __future__ import annotations

import torch
from conftest import TINY_RECORDS

from owlore_bench.train.data import TrainingData
from owlore_bench.train.tokenize import tokenize_record


def tiny_data(tokenizer) -> TrainingData:
    return TrainingData([tokenize_record(r, tokenizer, "plain", 64) for r in TINY_RECORDS], tokenizer.pad_token_id)


def step_by_hand(model, optimizer, data: TrainingData, lr_multipliers: list[float], batch: int) -> None:
    """One step per multiplier: LR = base LR x multiplier, backward, clip to norm 1 over the optimizer's
    parameters in its order (another order sums the norm differently), step."""
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    for step, multiplier in enumerate(lr_multipliers):
        for group, base_lr in zip(optimizer.param_groups, base_lrs):
            group["lr"] = base_lr * multiplier
        model(**data.batch(step, batch)).loss.backward()
        torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
