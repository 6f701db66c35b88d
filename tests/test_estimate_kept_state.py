"""The estimator's kept optimizer state (LISA / OwLore `keep_state: true`, LMFlow #768): the state held at the end
of a run covers every layer the seeded sampler ever drew, against a closed form, a measured run and freed state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from owlore_bench.cli import main
from owlore_bench.config import TrainConfig
from owlore_bench.memory.estimate import SyntheticBatches, estimate_memory
from owlore_bench.memory.ledger import optimizer_bytes
from owlore_bench.models import tiny_llama, tiny_llama_config
from owlore_bench.registry import build_method
from owlore_bench.train.loop import train
from owlore_bench.train.sampling import LayerSampler

LAYERS = 8
ARCH = tiny_llama_config(num_hidden_layers=LAYERS)
SHAPE = dict(batch_size=2, seq_len=16, dtype="fp32")
SEED, STEPS = 5, 10
LISA = {"gamma": 1, "interval": 3, "keep_state": True}  # draws at steps 0, 3, 6, 9: at most 4 of the 8 layers


def visited_layers(gamma: int, interval: int, steps: int, seed: int) -> set[int]:
    """The layers the run's sampler draws over `steps` steps, drawn here by calling it directly (uniform)."""
    sampler = LayerSampler(np.full(LAYERS, 1 / LAYERS), gamma, interval, seed)
    return {layer for _ in range(0, steps, interval) for layer in sampler.draw()}


def parameter_counts() -> tuple[int, int]:
    """(numbers in one decoder layer, numbers outside the decoder layers: embeddings, final norm, lm_head)."""
    model, _ = tiny_llama(num_hidden_layers=LAYERS)
    per_layer = sum(p.numel() for p in model.model.layers[0].parameters())
    return per_layer, sum(p.numel() for p in model.parameters()) - LAYERS * per_layer


def adamw_bytes(layers: int) -> int:
    """fp32 AdamW state of `layers` decoder layers plus the always-trained parts: exp_avg and exp_avg_sq (2 x 4
    bytes a number) and a 4-byte step per tensor (3 outside the layers, 7 Linears + 2 norms in each)."""
    per_layer, rest = parameter_counts()
    return 2 * 4 * (layers * per_layer + rest) + 4 * (3 + 9 * layers)


def held_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of every tensor in the optimizer state, summed by hand (AdamW: plain tensors per parameter)."""
    return sum(t.numel() * t.element_size() for state in optimizer.state.values() for t in state.values()
               if torch.is_tensor(t))


def run_loop(tmp_path, method_name: str, config: dict, steps: int) -> torch.optim.Optimizer:
    """`steps` real steps of the suite's loop on tiny-llama; returns the optimizer it trained with."""
    model, _ = tiny_llama(num_hidden_layers=LAYERS)
    method = build_method(method_name, config, seed=SEED)  # the run's seed, as train_run passes it
    model = method.prepare(model)
    built = []
    build = method.build_optimizer
    method.build_optimizer = lambda *args, **kwargs: built.append(build(*args, **kwargs)) or built[-1]
    cfg = TrainConfig(steps=steps, batch_size=SHAPE["batch_size"], max_length=SHAPE["seq_len"], dtype="fp32",
                      device="cpu", seed=SEED, progress=False, schedule="constant")
    summary = train(model, method, SyntheticBatches(ARCH.vocab_size, SHAPE["seq_len"], SEED), cfg, tmp_path)
    assert summary["status"] == "ok", summary["error"]
    return built[0]


def test_kept_state_is_adamw_over_the_union_of_the_layers_the_sampler_visits():
    visited = visited_layers(LISA["gamma"], LISA["interval"], STEPS, SEED)
    assert 1 < len(visited) < LAYERS  # the anchor tells the union apart from the first draw and from every layer
    estimate = estimate_memory(ARCH, "lisa", LISA, seed=SEED, steps=STEPS, **SHAPE)
    assert estimate["optimizer"] == adamw_bytes(1)  # step 0: γ = 1 layer
    assert estimate["optimizer_state_kept"] == adamw_bytes(len(visited))
    assert estimate["total_state_kept"] == estimate["total"] + adamw_bytes(len(visited)) - adamw_bytes(1)


def test_without_steps_the_bound_is_every_layer():
    estimate = estimate_memory(ARCH, "lisa", LISA, seed=SEED, **SHAPE)
    assert estimate["optimizer_state_kept"] == adamw_bytes(LAYERS)


def test_kept_state_equals_the_state_a_real_run_holds_at_its_end(tmp_path):
    optimizer = run_loop(tmp_path, "lisa", LISA, STEPS)
    estimate = estimate_memory(ARCH, "lisa", LISA, seed=SEED, steps=STEPS, **SHAPE)
    assert held_state_bytes(optimizer) == estimate["optimizer_state_kept"]


def test_owlore_kept_galore_state_equals_a_real_run(tmp_path):
    """GaLore state (projected moments and the projector) is made by the optimizer itself, on fake tensors."""
    ratios = tmp_path / "ratios.txt"
    ratios.write_text("1.0\n" * LAYERS)
    config = {"gamma": 2, "interval": 2, "rank": 4, "keep_state": True, "outlier_ratios_file": str(ratios)}
    optimizer = run_loop(tmp_path / "run", "owlore", config, 7)
    estimate = estimate_memory(ARCH, "owlore", config, seed=SEED, steps=7, **SHAPE)
    assert optimizer_bytes(optimizer) == estimate["optimizer_state_kept"] > estimate["optimizer"]


def test_freed_state_is_unchanged_and_matches_a_real_run(tmp_path):
    freed = {**LISA, "keep_state": False}
    estimate = estimate_memory(ARCH, "lisa", freed, seed=SEED, steps=STEPS, **SHAPE)
    assert estimate == estimate_memory(ARCH, "lisa", freed, seed=SEED, **SHAPE)  # no kept entries, same ledger
    assert "optimizer_state_kept" not in estimate
    assert held_state_bytes(run_loop(tmp_path, "lisa", freed, STEPS)) == estimate["optimizer"] == adamw_bytes(1)


def test_memory_command_prints_the_kept_state_at_the_end_of_the_run(capsys):
    args = ["memory", "--model", "tiny-llama", "--methods", "lisa,full_ft", "--batch-size", "1", "--seq-len", "8",
            "--dtype", "fp32", "--set", "lisa.keep_state=true"]
    assert main([*args, "--steps", "6"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "kept" in line]
    assert len(lines) == 1 and lines[0].startswith("lisa: optimizer state kept (keep_state), after 6 steps")
    assert main(args) == 0
    assert "bound without --steps (every layer holds state)" in capsys.readouterr().out
    assert main([*args, "--steps", "0"]) == 2
    assert "--steps must be a positive number of training steps (got 0)" in capsys.readouterr().err


@pytest.mark.parametrize("steps", [1, 2])
def test_a_run_that_never_switches_keeps_only_its_first_layers(steps):
    estimate = estimate_memory(ARCH, "lisa", LISA, seed=SEED, steps=steps, **SHAPE)
    assert estimate["optimizer_state_kept"] == estimate["optimizer"]
