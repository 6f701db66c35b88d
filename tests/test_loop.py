"""The shared training loop on tiny-llama: learning, determinism, resume, divergence, schedules."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pytest
import torch

from owlore_bench.config import TrainConfig
from owlore_bench.models import tiny_llama
from owlore_bench.registry import build_method
from owlore_bench.results import read_jsonl
from owlore_bench.train.data import TrainingData
from owlore_bench.train.loop import lr_lambda, seed_everything, train

OVERFIT = {"full_ft": ({}, 3e-3), "lora": ({"r": 8, "alpha": 16, "dropout": 0.0}, 1e-2)}


def run(tmp: Path, data_file: Path, method_name: str, overrides: dict | None = None, **train_fields):
    cfg = TrainConfig(**{"batch_size": 8, "progress": False, **train_fields})
    model, tokenizer = tiny_llama()
    method = build_method(method_name, overrides or {})
    seed_everything(cfg.seed)
    model = method.prepare(model)
    data = TrainingData.from_file(data_file, tokenizer, cfg.max_length, "plain", seed=cfg.seed)
    summary = train(model, method, data, cfg, tmp)
    return summary, [row["loss"] for row in read_jsonl(tmp / "metrics.jsonl")], model


@pytest.mark.parametrize("method_name", sorted(OVERFIT))
def test_overfitting_eight_examples_halves_the_loss(tmp_path, tiny_data, method_name):
    overrides, lr = OVERFIT[method_name]
    summary, losses, _ = run(tmp_path, tiny_data, method_name, overrides, steps=40, lr=lr, schedule="constant")
    assert summary["status"] == "ok" and summary["steps"] == 40
    assert losses[-1] < 0.5 * losses[0], f"{method_name}: loss {losses[0]:.3f} -> {losses[-1]:.3f}"


def test_same_seed_gives_identical_loss_curves_and_another_seed_does_not(tmp_path, tiny_data):
    fields = dict(steps=6, lr=1e-3, seed=3, batch_size=4)
    _, first, _ = run(tmp_path / "a", tiny_data, "lora", {"dropout": 0.1}, **fields)
    _, second, _ = run(tmp_path / "b", tiny_data, "lora", {"dropout": 0.1}, **fields)
    _, other, _ = run(tmp_path / "c", tiny_data, "lora", {"dropout": 0.1}, **{**fields, "seed": 4})
    assert first == second
    assert first != other


@pytest.mark.parametrize("method_name", ["full_ft", "lora"])
def test_resume_from_checkpoint_gives_the_uninterrupted_losses(tmp_path, tiny_data, method_name):
    fields = dict(steps=8, lr=3e-3, batch_size=4, checkpoint_every=3, schedule="linear", warmup_steps=2)
    overrides = {"dropout": 0.1} if method_name == "lora" else {}  # dropout: the RNG state must resume too
    _, straight, straight_model = run(tmp_path / "straight", tiny_data, method_name, overrides, **fields)
    _interrupted_run(tmp_path / "resumed", tiny_data, method_name, overrides, stop_at_step=5, **fields)
    assert (tmp_path / "resumed" / "checkpoint" / "state.pt").is_file()
    assert [row["step"] for row in read_jsonl(tmp_path / "resumed" / "metrics.jsonl")] == [0, 1, 2, 3, 4]
    _, resumed, resumed_model = run(tmp_path / "resumed", tiny_data, method_name, overrides, **fields)
    assert resumed == pytest.approx(straight, rel=1e-5, abs=1e-6)
    for (name, a), b in zip(straight_model.state_dict().items(), resumed_model.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)


def _interrupted_run(out: Path, data_file: Path, method_name: str, overrides: dict, stop_at_step: int, **fields):
    """The same run, stopped at the start of `stop_at_step` as if the process were killed there."""
    cfg = TrainConfig(**{"progress": False, **fields})
    model, tokenizer = tiny_llama()
    method = build_method(method_name, overrides)
    seed_everything(cfg.seed)
    model = method.prepare(model)
    original = method.on_step_start

    def stop_at(step, *args):
        if step == stop_at_step:
            raise KeyboardInterrupt
        return original(step, *args)

    method.on_step_start = stop_at
    data = TrainingData.from_file(data_file, tokenizer, cfg.max_length, "plain", seed=cfg.seed)
    with pytest.raises(KeyboardInterrupt):
        train(model, method, data, cfg, out)


def test_non_finite_loss_stops_the_run_as_diverged(tmp_path, tiny_data):
    summary, losses, _ = run(tmp_path, tiny_data, "full_ft", steps=30, lr=1e12, grad_clip=0.0, schedule="constant")
    assert summary["status"] == "diverged"
    assert summary["steps"] < 30
    last = read_jsonl(tmp_path / "metrics.jsonl")[-1]
    assert last["status"] == "diverged"


def test_metrics_lines_carry_step_loss_lr_throughput_and_memory(tmp_path, tiny_data):
    summary, _, _ = run(tmp_path, tiny_data, "full_ft", steps=3, lr=1e-3)
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert [row["step"] for row in rows] == [0, 1, 2]
    for row in rows:
        assert row["tokens_per_s"] > 0 and row["elapsed_s"] > 0
        categories = ("weights", "gradients", "optimizer", "activations")
        assert row["mem_total_bytes"] == sum(row[f"mem_{c}_bytes"] for c in categories)
    assert rows[0]["lr"] == pytest.approx(1e-3) and rows[2]["lr"] < rows[1]["lr"]  # linear decay
    parameters = list(tiny_llama()[0].parameters())
    n_params = sum(p.numel() for p in parameters)
    assert summary["trainable_params"] == n_params
    assert summary["peak_mem_weights_bytes"] == 4 * n_params  # fp32
    # AdamW: exp_avg + exp_avg_sq per element, plus one 4-byte `step` scalar tensor per parameter tensor
    assert summary["peak_mem_optimizer_bytes"] == 2 * 4 * n_params + 4 * len(parameters)
    # throughput: the median of the steps after warm-up (step 0 left out), and the machine's load each step
    assert summary["tokens_per_s"] == pytest.approx(statistics.median(row["tokens_per_s"] for row in rows[1:]))
    assert all(row["load_1m"] >= 0 for row in rows) and summary["cpu_count"] >= 1
    assert summary["load_avg_1m"] == pytest.approx(statistics.median(row["load_1m"] for row in rows[1:]))
    json.dumps(summary)


@pytest.mark.parametrize("schedule,expected", [
    ("constant", [0.5, 1.0, 1.0, 1.0, 1.0]),
    ("linear", [0.5, 1.0, 0.75, 0.5, 0.25]),
    ("cosine", [0.5, 1.0, 0.8535534, 0.5, 0.1464466]),
])
def test_lr_schedules_warm_up_then_decay(schedule, expected):
    multiplier = lr_lambda(TrainConfig(steps=5, warmup_steps=1, schedule=schedule))
    assert [multiplier(step) for step in range(5)] == pytest.approx(expected)


def test_gradient_accumulation_runs_every_micro_batch_per_step(tmp_path, tiny_data):
    _, _, _ = run(tmp_path / "accum", tiny_data, "full_ft", steps=2, lr=1e-3, batch_size=2, grad_accum=2)
    rows = read_jsonl(tmp_path / "accum" / "metrics.jsonl")
    data = TrainingData.from_file(tiny_data, tiny_llama()[1], 128, "plain", seed=0)
    for step, row in enumerate(rows):  # step k consumes micro-batches 2k and 2k+1
        expected = sum(int(data.batch(2 * step + micro, 2)["attention_mask"].sum()) for micro in range(2))
        assert row["tokens"] == expected


def test_gradient_checkpointing_gives_the_same_losses_with_fewer_saved_activations(tmp_path, tiny_data):
    _, plain, _ = run(tmp_path / "plain", tiny_data, "full_ft", steps=3, lr=1e-3)
    _, checkpointed, _ = run(tmp_path / "ckpt", tiny_data, "full_ft", steps=3, lr=1e-3, grad_checkpointing=True)
    assert checkpointed == pytest.approx(plain, rel=1e-4)
    saved = [read_jsonl(tmp_path / name / "metrics.jsonl")[0]["mem_activations_bytes"] for name in ("plain", "ckpt")]
    assert saved[1] < saved[0]


def test_phase_timing_puts_each_phase_in_its_own_column_and_is_off_by_default(tmp_path, tiny_data, monkeypatch):
    """Sleeps planted in the forward (per micro-batch) and in optimizer.step land in forward_s and update_s."""
    forward_pause, update_pause = 0.1, 0.15
    real_step = torch.optim.AdamW.step

    def slow_step(self, *args, **kwargs):
        time.sleep(update_pause)
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", slow_step)
    cfg = TrainConfig(steps=2, batch_size=2, grad_accum=2, lr=1e-3, progress=False, time_phases=True)
    model, tokenizer = tiny_llama()
    model.model.layers[0].register_forward_pre_hook(lambda *_: time.sleep(forward_pause))
    method = build_method("full_ft")
    model = method.prepare(model)
    data = TrainingData.from_file(tiny_data, tokenizer, cfg.max_length, "plain", seed=cfg.seed)
    train(model, method, data, cfg, tmp_path / "timed")
    for row in read_jsonl(tmp_path / "timed" / "metrics.jsonl"):
        assert row["forward_s"] >= 2 * forward_pause  # two micro-batches
        assert update_pause <= row["update_s"] < update_pause + row["forward_s"]
        assert 0 < row["backward_s"] < forward_pause  # neither sleep is in backward
        assert row["forward_s"] + row["backward_s"] + row["update_s"] <= row["step_s"]
    _, _, _ = run(tmp_path / "plain", tiny_data, "full_ft", steps=1, lr=1e-3)
    assert "forward_s" not in read_jsonl(tmp_path / "plain" / "metrics.jsonl")[0]
