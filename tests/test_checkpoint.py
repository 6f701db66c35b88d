"""Resuming GaLore-based runs: the projector objects inside the optimizer state follow their parameters."""

from __future__ import annotations

import torch
from conftest import TINY_RECORDS

from owlore_bench.models import tiny_llama
from owlore_bench.registry import build_method
from owlore_bench.train.checkpoint import load_checkpoint, save_checkpoint
from owlore_bench.train.data import TrainingData
from owlore_bench.train.tokenize import tokenize_record


def _projectors(optimizer):
    return [(param, value) for param, state in optimizer.state.items() for value in state.values()
            if type(value).__name__ == "GaLoreProjector"]


def _galore_after_one_step(dtype=torch.float32):
    model, tokenizer = tiny_llama(seed=0)
    method = build_method("galore", {"rank": 4})
    model = method.prepare(model).to(dtype)
    optimizer = method.build_optimizer(model, lr=1e-3, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return model, method, optimizer, scheduler, tokenizer


def test_restored_projectors_take_their_parameters_dtype_and_device(tmp_path):
    """On CUDA the bug was a CPU ortho_matrix against a CUDA gradient; a dtype change shows the same move on
    a CPU: saved from fp32, resumed into a bf16 model, every ortho_matrix must come back as bf16."""
    model, method, optimizer, scheduler, tokenizer = _galore_after_one_step()
    data = TrainingData([tokenize_record(r, tokenizer, "plain", 64) for r in TINY_RECORDS], tokenizer.pad_token_id)
    model(**data.batch(0, 2)).loss.backward()
    optimizer.step()
    assert _projectors(optimizer) and all(p.ortho_matrix.dtype == torch.float32 for _, p in _projectors(optimizer))
    save_checkpoint(tmp_path / "checkpoint", step=1, elapsed_s=1.0, model=model, optimizer=optimizer,
                    scheduler=scheduler, method=method)

    model, method, optimizer, scheduler, _ = _galore_after_one_step(torch.bfloat16)
    assert load_checkpoint(tmp_path / "checkpoint", model=model, optimizer=optimizer, scheduler=scheduler,
                           method=method) == (1, 1.0)
    restored = _projectors(optimizer)
    assert restored
    for param, projector in restored:
        assert projector.ortho_matrix.dtype == param.dtype == torch.bfloat16
        assert projector.ortho_matrix.device == param.device
    model(**data.batch(1, 2)).loss.backward()
    optimizer.step()  # the resumed step runs with the moved projectors
