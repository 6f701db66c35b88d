"""Layer sampling (LISA / OwLore): probability rules, exact inclusion probabilities, the active-set switch that
frees gradients and optimizer state, reproducibility, checkpoint/resume, and bad-input errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import TINY_RECORDS, run_cli

from owlore_bench.config import TrainConfig
from owlore_bench.errors import UserError
from owlore_bench.models import tiny_llama
from owlore_bench.registry import build_method
from owlore_bench.results import read_jsonl
from owlore_bench.train.data import TrainingData
from owlore_bench.train.layers import decoder_layers
from owlore_bench.train.loop import train
from owlore_bench.train.sampling import LayerSampler, inclusion_probabilities, layer_probabilities
from owlore_bench.train.tokenize import tokenize_record

REFERENCE = "reference/owlore_llama2_7b_outlier_ratio_M13.txt"


def tiny_data(tokenizer) -> TrainingData:
    return TrainingData([tokenize_record(r, tokenizer, "plain", 64) for r in TINY_RECORDS], tokenizer.pad_token_id)


def ratio_file(tmp_path, values) -> str:
    path = tmp_path / "ratios.txt"
    path.write_text("\n".join(str(v) for v in values) + "\n")
    return str(path)


def test_official_ratio_file_probabilities_match_d_over_sum(shared_data):
    ratios = np.loadtxt(shared_data / REFERENCE)
    p = layer_probabilities("outlier", 32, ratios)
    assert p == pytest.approx(ratios / ratios.sum())
    assert (round(p[1], 4), round(p[0], 4), round(p[27], 4)) == (0.1351, 0.1225, 0.0083)


def test_empirical_inclusion_matches_exact_sequential_draw(shared_data):
    p = layer_probabilities("outlier", 32, np.loadtxt(shared_data / REFERENCE))
    exact = inclusion_probabilities(p, 5)
    assert exact.sum() == pytest.approx(5.0)
    assert exact[1] == pytest.approx(0.554, abs=0.001) and exact[27] == pytest.approx(0.046, abs=0.001)
    sampler = LayerSampler(p, gamma=5, interval=1, seed=0)
    counts = np.zeros(32)
    for _ in range(20_000):
        counts[sampler.draw()] += 1
    assert np.abs(counts / 20_000 - exact).max() < 0.01


def test_probability_rules():
    assert layer_probabilities("uniform", 4) == pytest.approx([0.25] * 4)
    assert layer_probabilities("increase", 4) == pytest.approx(np.array([1, 2, 3, 4]) / 10)
    assert layer_probabilities("decrease", 4) == pytest.approx(np.array([4, 3, 2, 1]) / 10)
    p = np.array([1.0, 2.0, 3.0, 4.0]) / 10
    assert layer_probabilities("outlier_reverse", 4, [1, 2, 3, 4]) == pytest.approx((p.max() - p) / (p.max() - p).sum())
    with pytest.raises(UserError, match="sampling"):
        layer_probabilities("random", 4)


def prepared(name: str, layers: int = 6, **overrides):
    model, tokenizer = tiny_llama(seed=0, num_hidden_layers=layers)
    method = build_method(name, overrides)
    return method, method.prepare(model), tokenizer


def test_only_sampled_layers_and_always_trained_parts_get_gradients_and_state():
    method, model, tokenizer = prepared("lisa", gamma=2, interval=2, seed=3)
    data, layers = tiny_data(tokenizer), decoder_layers(model)
    optimizer = method.build_optimizer(model, lr=1e-2, weight_decay=0.0)
    outside = {id(p) for p in model.parameters()} - {id(p) for layer in layers for p in layer.parameters()}
    seen_sets = []
    for step in range(8):
        active = method.on_step_start(step, model, optimizer)["active_layers"]
        model(**data.batch(step, 4)).loss.backward()
        with_grad = {id(p) for p in model.parameters() if p.grad is not None}
        expected = outside | {id(p) for i in active for p in layers[i].parameters()}
        assert with_grad == expected
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        in_state = {id(p) for p in optimizer.state}
        assert in_state == expected, "the optimizer holds state only for active layers + always-trained parts"
        seen_sets.append(tuple(active))
    assert len(set(seen_sets)) > 1, "the active layers switched at least once"


def test_keep_state_reproduces_the_reference_state_creep():
    method, model, tokenizer = prepared("lisa", gamma=1, interval=1, seed=0, keep_state=True)
    data = tiny_data(tokenizer)
    optimizer = method.build_optimizer(model, lr=1e-2, weight_decay=0.0)
    ever = set()
    for step in range(6):
        ever.update(method.on_step_start(step, model, optimizer)["active_layers"])
        model(**data.batch(step, 4)).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    layers = decoder_layers(model)
    with_state = {i for i, layer in enumerate(layers) if any(p in optimizer.state for p in layer.parameters())}
    assert with_state == ever and len(ever) > 1


def test_a_layer_sampled_only_after_step_zero_is_trained():
    method, model, tokenizer = prepared("lisa", gamma=1, interval=2, seed=1)
    data, layers = tiny_data(tokenizer), decoder_layers(model)
    before = [layer.self_attn.q_proj.weight.detach().clone() for layer in layers]
    optimizer = method.build_optimizer(model, lr=1e-2, weight_decay=0.0)
    history = []
    for step in range(12):
        history.append(method.on_step_start(step, model, optimizer)["active_layers"])
        model(**data.batch(step, 4)).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    late = {i for a in history[2:] for i in a} - set(history[0])
    assert late, "the seed should sample a new layer after step 0"
    for index in late:
        assert not torch.equal(before[index], layers[index].self_attn.q_proj.weight), f"layer {index} never changed"
    never = set(range(len(layers))) - {i for a in history for i in a}
    for index in never:
        assert torch.equal(before[index], layers[index].self_attn.q_proj.weight)


def test_a_layer_that_stays_across_a_switch_keeps_its_gradient_and_adam_state():
    from owlore_bench.train.sampling import switch_active_layers

    method, model, tokenizer = prepared("lisa", layers=3, gamma=2, interval=1, seed=0)
    data, layers = tiny_data(tokenizer), decoder_layers(model)
    optimizer = method.build_optimizer(model, lr=1e-2, weight_decay=0.0)
    switch_active_layers(layers, None, [0, 1], optimizer)
    for step in range(2):
        model(**data.batch(step, 4)).loss.backward()
        optimizer.step()
    staying, leaving = list(layers[1].parameters()), list(layers[0].parameters())
    before = {id(p): {k: v.clone() for k, v in optimizer.state[p].items()} for p in staying}
    grads = {id(p): p.grad.clone() for p in staying}
    switch_active_layers(layers, [0, 1], [1, 2], optimizer)
    for param in staying:
        assert param.requires_grad and torch.equal(param.grad, grads[id(param)])
        state = optimizer.state[param]
        assert float(state["step"]) == 2.0
        assert all(torch.equal(state[k], before[id(param)][k]) for k in ("exp_avg", "exp_avg_sq"))
    assert all(p.grad is None and p not in optimizer.state and not p.requires_grad for p in leaving)
    optimizer.zero_grad(set_to_none=True)
    model(**data.batch(2, 4)).loss.backward()
    optimizer.step()
    assert all(float(optimizer.state[p]["step"]) == 3.0 for p in staying)  # it keeps counting


def test_lisa_training_every_layer_is_full_fine_tuning_bit_for_bit(tmp_path):
    """γ = L with a draw every step: every switch keeps every layer, so nothing may differ from full FT."""
    _, lisa = run_loop(tmp_path, "lisa", "lisa", gamma=4, interval=1)
    _, full = run_loop(tmp_path, "full_ft", "full")
    assert [row["loss"] for row in lisa] == [row["loss"] for row in full] and len(lisa) == 6


def loop_config(**overrides) -> TrainConfig:
    values = dict(steps=6, batch_size=4, max_length=64, lr=1e-2, schedule="constant", seed=5, progress=False,
                  memory_profile=False, device="cpu", dtype="fp32")
    return TrainConfig(**{**values, **overrides})


def run_loop(tmp_path, name, folder, cfg=None, **overrides):
    method, model, tokenizer = prepared(name, layers=4, **overrides)
    summary = train(model, method, tiny_data(tokenizer), cfg or loop_config(), tmp_path / folder)
    return summary, read_jsonl(tmp_path / folder / "metrics.jsonl")


def test_same_seed_same_active_layers_recorded_in_metrics(tmp_path):
    _, first = run_loop(tmp_path, "lisa", "a", gamma=2, interval=2)
    _, second = run_loop(tmp_path, "lisa", "b", gamma=2, interval=2)
    layers = [row["active_layers"] for row in first]
    assert layers == [row["active_layers"] for row in second]
    assert all(len(a) == 2 for a in layers) and layers[0] == layers[1]


@pytest.mark.parametrize("name", ["lisa", "owlore"])
def test_checkpoint_resume_reproduces_losses(tmp_path, name):
    ratios = ratio_file(tmp_path, [1, 2, 3, 4])
    extra = {"gamma": 2, "interval": 2}
    if name == "owlore":
        extra.update(rank=8, outlier_ratios_file=ratios)
    _, straight = run_loop(tmp_path, name, "straight", cfg=loop_config(checkpoint_every=3), **extra)
    method, model, tokenizer = prepared(name, layers=4, **extra)
    original = method.on_step_start

    def crash_at_four(step, model, optimizer):
        if step == 4:
            raise RuntimeError("simulated crash")
        return original(step, model, optimizer)

    method.on_step_start = crash_at_four
    crashed = train(model, method, tiny_data(tokenizer), loop_config(checkpoint_every=3), tmp_path / "resumed")
    assert crashed["status"] == "failed"
    method, model, tokenizer = prepared(name, layers=4, **extra)
    train(model, method, tiny_data(tokenizer), loop_config(checkpoint_every=3), tmp_path / "resumed")
    resumed = read_jsonl(tmp_path / "resumed" / "metrics.jsonl")
    assert [r["step"] for r in resumed] == list(range(6))
    assert [r["active_layers"] for r in resumed] == [r["active_layers"] for r in straight]
    assert [r["loss"] for r in resumed] == pytest.approx([r["loss"] for r in straight], rel=1e-5)


@pytest.mark.parametrize("overrides, field", [({"gamma": 0}, "gamma"), ({"interval": 0}, "interval"),
                                              ({"rank": 0}, "rank"), ({"sampling": "random"}, "sampling")])
def test_bad_config_values_name_the_field(overrides, field):
    with pytest.raises(UserError, match=rf"owlore\.{field}"):
        build_method("owlore", overrides)


def test_gamma_above_layer_count_is_one_clear_error():
    with pytest.raises(UserError, match=r"owlore\.gamma: 40 is more than the model's 6 decoder layers"):
        prepared("owlore", gamma=40, outlier_ratios_file="unused")


@pytest.mark.parametrize("values, message", [([1, 2, 3], "has 3 lines but the model has 4"),
                                             ([1, -2, 3, 4], "negative")])
def test_bad_ratio_files(tmp_path, values, message):
    with pytest.raises(UserError, match=message):
        prepared("owlore", layers=4, gamma=2, outlier_ratios_file=ratio_file(tmp_path, values))


@pytest.mark.parametrize("settings, expected", [(["method.gamma=40"], "owlore.gamma: 40 is more than"),
                                                (["method.gamma=2", "method.outlier_ratios_file=RATIOS"],
                                                 "has 3 lines")])
def test_cli_bad_input_is_one_line_exit_2(tmp_path, tiny_data, settings, expected):
    sets = [arg for s in settings for arg in ("--set", s.replace("RATIOS", ratio_file(tmp_path, [1, 2, 3])))]
    done = run_cli("train", "--method", "owlore", "--model", "tiny-llama", "--data", str(tiny_data), "--steps", "1",
                   "--template", "plain", *sets, "--out", str(tmp_path / "run"))
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("owlore-bench: error")]
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in done.stderr


def test_outlier_sampling_computes_ratios_on_the_fly_and_records_them(isolated_cache):
    method, model, _ = prepared("owlore", layers=4, gamma=2, outlier_threshold=3.0, calibration_samples=2,
                                calibration_length=32)
    info = method.run_info()
    ratios = np.asarray(info["outliers"]["outlier_ratio_percent"])
    assert len(ratios) == 4 and (ratios > 0).all()
    assert info["layer_probabilities"] == pytest.approx(ratios / ratios.sum())
    assert list(isolated_cache.glob("outliers/*.json")), "the ratios are cached"
    json.dumps(info)  # summary.json must be able to hold it
