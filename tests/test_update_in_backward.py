"""train.update_in_backward: the same weights as the normal step, less gradient memory, estimator = ledger, and
one line (exit 2) for the settings it cannot work with."""

from __future__ import annotations

import json
import tempfile

import pytest
import torch
from conftest import run_cli

from owlore_bench.config import TrainConfig
from owlore_bench.memory.estimate import (
    SyntheticBatches,
    estimate_memory,
    measure_memory,
    measured_ledger,
    relative_error,
)
from owlore_bench.models import load_model, tiny_llama_config
from owlore_bench.registry import build_method
from owlore_bench.train.loop import train
from owlore_bench.train.step_in_backward import StepInBackward

METHODS = {
    "full_ft": {},
    "galore": {"rank": 4, "update_proj_gap": 2},  # a projector refresh inside the 5 steps
    "owlore": {"rank": 4, "update_proj_gap": 2, "gamma": 2, "interval": 2, "sampling": "uniform"},  # 3 switches
    "lisa": {"gamma": 1, "interval": 2},
}


def trained_weights(method_name: str, update_in_backward: bool, steps: int = 5) -> tuple[dict, dict]:
    """(summary, state dict) after `steps` fp32 steps of tiny-llama on fixed synthetic batches, no clipping."""
    torch.manual_seed(0)
    model, _ = load_model("tiny-llama", dtype="fp32", device="cpu")
    method = build_method(method_name, METHODS[method_name])
    model = method.prepare(model)
    cfg = TrainConfig(steps=steps, batch_size=2, max_length=16, grad_clip=0.0, lr=1e-3, weight_decay=0.01,
                      update_in_backward=update_in_backward, progress=False)
    with tempfile.TemporaryDirectory() as out_dir:
        summary = train(model, method, SyntheticBatches(model.config.vocab_size, 16), cfg, out_dir)
    assert summary["status"] == "ok", summary["error"]
    return summary, {name: value.detach().clone() for name, value in model.state_dict().items()}


@pytest.mark.parametrize("method_name", list(METHODS))
def test_same_weights_as_the_normal_step(method_name):
    """5 steps with the update inside backward = 5 normal steps (fp32, tolerance 1e-6 relative per tensor;
    measured: bit-identical), while the step never holds all gradients at once."""
    normal, normal_weights = trained_weights(method_name, update_in_backward=False)
    in_backward, in_backward_weights = trained_weights(method_name, update_in_backward=True)
    initial = trained_weights(method_name, update_in_backward=False, steps=1)[1]
    moved = [name for name in normal_weights if not torch.equal(normal_weights[name], initial[name])]
    assert moved, "training changed nothing: the comparison would be empty"
    for name, expected in normal_weights.items():
        torch.testing.assert_close(in_backward_weights[name], expected, rtol=1e-6, atol=1e-7, msg=name)
    assert in_backward["peak_mem_gradients_bytes"] < normal["peak_mem_gradients_bytes"]
    assert in_backward["peak_mem_optimizer_bytes"] == normal["peak_mem_optimizer_bytes"]


def test_hooks_follow_the_active_layers():
    """Layer sampling: hooks sit on exactly the trainable parameters, and move with a layer switch."""
    model, _ = load_model("tiny-llama", dtype="fp32", device="cpu")
    method = build_method("lisa", {"gamma": 1, "interval": 1})
    model = method.prepare(model)
    optimizer = method.build_optimizer(model, lr=1e-3, weight_decay=0.0)
    seen = set()
    with StepInBackward(optimizer) as hooks:
        for step in range(4):
            extra = method.on_step_start(step, model, optimizer)
            hooks.refresh()
            trainable = {id(p) for p in model.parameters() if p.requires_grad}
            assert set(hooks.handles) == trainable
            seen.add(tuple(extra["active_layers"]))
    assert len(seen) > 1, "the sampler never switched layers: the test would not see hooks move"
    assert hooks.handles == {}


@pytest.mark.parametrize("method_name", ["full_ft", "galore", "owlore"])
def test_estimator_sees_the_in_backward_peak(method_name):
    """The estimator runs the same hooks on fake tensors: every category within 2 % of the measured ledger."""
    arch = tiny_llama_config(num_hidden_layers=6)
    shape = dict(batch_size=2, seq_len=24, dtype="fp32", seed=3, update_in_backward=True)
    estimate = estimate_memory(arch, method_name, **shape)
    summary = measure_memory(arch, method_name, steps=2, device="cpu", **shape)
    assert summary["status"] == "ok", summary["error"]
    measured = measured_ledger(summary)
    for category in ("weights", "gradients", "optimizer", "activations", "total"):
        assert abs(relative_error(estimate[category], measured[category]) or 0) <= 0.02, (category, estimate, measured)
    normal = estimate_memory(arch, method_name, **{**shape, "update_in_backward": False})
    assert estimate["gradients"] < normal["gradients"]


@pytest.mark.parametrize("settings, named", [
    (["--method", "full_ft", "--set", "train.grad_accum=2", "--set", "train.grad_clip=0"], "grad_accum"),
    (["--method", "galore"], "grad_clip"),  # the default grad_clip is 1.0
    (["--method", "lora", "--set", "train.grad_clip=0"], "lora"),
])
def test_incompatible_settings_get_one_line(tmp_path, tiny_data, settings, named):
    out = tmp_path / "run"
    result = run_cli("train", "--model", "tiny-llama", "--data", str(tiny_data), "--steps", "2", "--out", str(out),
                     "--set", "train.update_in_backward=true", *settings)
    assert result.returncode == 2, result.stderr
    message = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(message) == 1 and "update_in_backward" in message[0] and named in message[0], result.stderr
    assert not (out / "metrics.jsonl").exists()  # refused before any training


def cli_run(tmp_path, tiny_data, update_in_backward: bool) -> tuple[dict, dict]:
    """(summary.json, config.json) of a 3-step owlore CLI run of tiny-llama, with or without the flag."""
    out = tmp_path / f"run-{'in-backward' if update_in_backward else 'normal'}"
    from owlore_bench.cli import main  # in-process: the same main() the CLI runs, without a 10-s interpreter start

    assert main(["train", "--method", "owlore", "--model", "tiny-llama", "--data", str(tiny_data), "--steps", "3",
                 "--max-length", "64", "--template", "plain", "--out", str(out),
                 "--set", f"train.update_in_backward={str(update_in_backward).lower()}",
                 "--set", "train.grad_clip=0",
                 "--set", "method.gamma=1", "--set", "method.rank=4", "--set", "method.sampling=uniform"]) == 0
    return json.loads((out / "summary.json").read_text()), json.loads((out / "config.json").read_text())


def test_train_cli_with_update_in_backward_lowers_the_gradient_peak(tmp_path, tiny_data):
    in_backward, config = cli_run(tmp_path, tiny_data, update_in_backward=True)
    assert in_backward["status"] == "ok" and in_backward["steps"] == 3
    assert config["train"]["update_in_backward"] is True
    normal, config = cli_run(tmp_path, tiny_data, update_in_backward=False)
    assert normal["status"] == "ok" and config["train"]["update_in_backward"] is False
    assert 0 < in_backward["peak_mem_gradients_bytes"] < normal["peak_mem_gradients_bytes"], (in_backward, normal)
    # the same parameters train and the same optimizer state is held: only the gradient peak moves
    assert in_backward["trainable_params"] == normal["trainable_params"]
    assert in_backward["peak_mem_optimizer_bytes"] == normal["peak_mem_optimizer_bytes"]
