"""`train.epochs`: steps derived from the (packed) data and the global batch, epoch-aligned data order, the LR
schedule over the derived steps, resume mid-epoch, and `owlore-bench train --dry-run`."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from conftest import TINY_RECORDS

from owlore_bench.cli import main
from owlore_bench.config import DataConfig, RunConfig, TrainConfig, parse
from owlore_bench.errors import UserError
from owlore_bench.models import tiny_llama
from owlore_bench.registry import build_method
from owlore_bench.train.data import TrainingData
from owlore_bench.train.loop import seed_everything, train
from owlore_bench.train.steps import resolve_steps
from owlore_bench.train.tokenize import Example

# 8 records x 27 byte tokens = 216 -> 6 blocks of 32; every block holds response tokens (prompts are <= 22 bytes)
PACKED = DataConfig(path="x", template="plain", packing=True, block_size=32)


def _data(n: int) -> TrainingData:
    return TrainingData([Example([k, k], [k, k]) for k in range(n)], pad_token_id=0, seed=0)


def test_steps_are_whole_global_batches_of_the_data_times_epochs_rounded_up():
    data = _data(50)
    cfg = TrainConfig(epochs=1.5, batch_size=4, grad_accum=3)  # global batch 12 -> 4 whole steps per epoch
    assert resolve_steps(cfg, data).steps == 6
    assert resolve_steps(cfg, data, world_size=2).steps == 3  # global batch 24 -> 2 per epoch -> ceil(1.5 x 2)
    assert resolve_steps(TrainConfig(steps=7), data).steps == 7  # steps given: unchanged


def test_every_epoch_is_a_fresh_permutation_that_starts_on_a_step_boundary():
    data = _data(10)
    cfg = resolve_steps(TrainConfig(epochs=2, batch_size=4), data)  # 2 steps per epoch, 2 rows left out each epoch
    rows = [data.batch(index, 4)["input_ids"][:, 0].tolist() for index in range(cfg.steps)]
    first, second = rows[0] + rows[1], rows[2] + rows[3]
    assert len(set(first)) == 8 and len(set(second)) == 8  # no block twice within an epoch
    assert first != second


def test_steps_and_epochs_together_is_one_line_and_neither_keeps_the_default_40_steps():
    values = {"method": "full_ft", "data": {"path": "x"}}
    with pytest.raises(UserError, match=r"^train.epochs: give train.steps or train.epochs, not both") as caught:
        parse(RunConfig, {**values, "train": {"steps": 3, "epochs": 1}})
    assert "\n" not in str(caught.value)
    assert parse(RunConfig, values).train.steps == 40
    resolved = parse(RunConfig, {**values, "train": {"epochs": 1}})
    assert resolved.train.steps is None and parse(RunConfig, json.loads(resolved.model_dump_json())) == resolved


def _train(out_dir, stop_at: int | None = None):
    """LISA (its sampler has state) on the tiny model, 2 epochs of the packed tiny records; optionally killed."""
    model, tokenizer = tiny_llama(seed=0)
    method = build_method("lisa", {"gamma": 1, "interval": 2})
    seed_everything(0)
    model = method.prepare(model)
    data = TrainingData.build(TINY_RECORDS, tokenizer, PACKED, max_length=64, seed=0)
    cfg = TrainConfig(epochs=2, batch_size=2, lr=1e-3, checkpoint_every=2, progress=False, memory_profile=False,
                      device="cpu", dtype="fp32")
    if stop_at is not None:
        start = method.on_step_start

        def stopping(step, *args):
            if step == stop_at:
                raise KeyboardInterrupt  # a kill between two checkpoints
            return start(step, *args)

        method.on_step_start = stopping
    try:
        summary = train(model, method, data, cfg, out_dir)
    except KeyboardInterrupt:
        summary = None
    return summary, model, len(data)


def test_a_run_resumed_mid_epoch_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    straight, model, blocks = _train(tmp_path / "straight")
    assert blocks == 6 and straight["status"] == "ok" and straight["steps"] == 6  # 3 steps of 2 blocks per epoch
    # killed at step 5: the checkpoint after step 4 is one step into the second epoch
    assert _train(tmp_path / "resumed", stop_at=5)[0] is None
    resumed, again, _ = _train(tmp_path / "resumed")
    assert resumed["status"] == "ok"
    for (name, a), b in zip(model.named_parameters(), again.parameters()):
        assert torch.equal(a, b), name
    lrs = [json.loads(line)["lr"] for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    # linear decay over the derived steps: the last step runs at lr x 1/steps
    assert lrs[-1] == pytest.approx(1e-3 / straight["steps"])


def test_dry_run_prints_the_packed_data_plan_without_training(tmp_path, capsys):
    path = tmp_path / "t2t.json"
    path.write_text(json.dumps({"type": "text2text", "instances": [{"input": "ab", "output": "cdef"}] * 5}))
    code = main(["train", "--method", "full_ft", "--model", "tiny-llama", "--data", str(path), "--epochs", "2",
                 "--batch-size", "2", "--set", "data.packing=true", "--set", "data.block_size=4", "--dry-run",
                 "--out", str(tmp_path / "run")])
    printed = capsys.readouterr().out
    # 5 records x 6 byte tokens = 30 tokens -> 7 blocks of 4 (2 dropped); 3 steps per epoch of 2 blocks; 6 steps
    assert code == 0 and "records 5, tokens 28 in 7 blocks of 4 tokens" in printed
    assert "steps per epoch 3 (global batch 2), tokens per step 8, steps to run 6 (2 epoch(s))" in printed
    assert not (tmp_path / "run").exists()


def test_summary_records_the_data_facts_and_the_derived_steps(tmp_path):
    path = tmp_path / "t2t.json"
    path.write_text(json.dumps({"type": "text2text", "instances": [{"input": "ab", "output": "cdef"}] * 5}))
    code = main(["train", "--method", "full_ft", "--model", "tiny-llama", "--data", str(path), "--epochs", "1",
                 "--batch-size", "2", "--set", "data.packing=true", "--set", "data.block_size=4",
                 "--set", "train.progress=false", "--out", str(tmp_path / "run")])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert code == 0 and summary["steps"] == summary["planned_steps"] == 3
    assert summary["data"] == {"records": 5, "tokens": 28, "blocks": 7, "steps_per_epoch": 3, "tokens_per_step": 8}
    assert summary["data_sources"] == [{"source": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}]
