"""GaLore parameter groups and state shapes, the per-matrix rank clamp, one step against a hand-computed projected
Adam update, and loss falling for the new methods."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from conftest import TINY_RECORDS

from owlore_bench.config import TrainConfig
from owlore_bench.models import tiny_llama
from owlore_bench.registry import build_method
from owlore_bench.results import read_jsonl
from owlore_bench.train.data import TrainingData
from owlore_bench.train.galore_groups import galore_param_groups, projection_targets
from owlore_bench.train.loop import train
from owlore_bench.train.tokenize import tokenize_record


def tiny_data(tokenizer) -> TrainingData:
    return TrainingData([tokenize_record(r, tokenizer, "plain", 64) for r in TINY_RECORDS], tokenizer.pad_token_id)


def one_step(method_name: str, **overrides):
    model, tokenizer = tiny_llama(seed=0)
    method = build_method(method_name, overrides)
    model = method.prepare(model)
    optimizer = method.build_optimizer(model, lr=1e-3, weight_decay=0.0)
    method.on_step_start(0, model, optimizer)
    model(**tiny_data(tokenizer).batch(0, 4)).loss.backward()
    optimizer.step()
    return model, optimizer


def test_targets_are_the_seven_projections_of_every_layer():
    model, _ = tiny_llama()
    names = projection_targets(model)
    assert len(names) == 7 * 4
    projections = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert {n.split(".")[-2] for n in names} == projections
    assert not any("lm_head" in n or "embed" in n or "norm" in n for n in names)


def test_galore_state_shapes_follow_the_std_rule():
    model, optimizer = one_step("galore", rank=8)
    targets = {id(p): name for name, p in projection_targets(model).items()}
    checked = 0
    for param, state in optimizer.state.items():
        m, n = param.shape[0], param.shape[-1]
        if id(param) in targets:
            expected = (m, 8) if m >= n else (8, n)
            assert tuple(state["exp_avg"].shape) == expected, targets[id(param)]
            checked += 1
        else:
            assert state["exp_avg"].shape == param.shape  # plain Adam: full-size moments
    assert checked == 28


def test_rank_at_or_above_min_dim_is_clamped_with_one_warning_for_all_matrices():
    model, _ = tiny_llama()  # q/o 64x64, k/v 32x64, gate/up 128x64, down 64x128
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        groups = galore_param_groups(model, rank=64, update_proj_gap=10, scale=1.0, proj_type="std")
    messages = [str(w.message) for w in caught if "galore rank" in str(w.message)]
    assert len(messages) == 1 and "of 28 matrices" in messages[0]  # 64 >= min of every matrix of the 4 layers
    assert "(32, 64)" in messages[0] and "layers.0.self_attn" in messages[0]
    ranks = {group.get("rank") for group in groups}
    assert ranks == {None, 32, 64}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        galore_param_groups(model, rank=16, update_proj_gap=10, scale=1.0, proj_type="std")
    assert not [w for w in caught if "galore rank" in str(w.message)]


def test_clamped_matrices_train_with_full_rank_states():
    model, optimizer = one_step("galore", rank=64)
    k_proj = model.model.layers[0].self_attn.k_proj.weight  # 32 x 64: clamped to 32 = full rank
    assert tuple(optimizer.state[k_proj]["exp_avg"].shape) == (32, 64)


def test_layer_sampling_with_low_rank_gives_galore_state_only_to_sampled_layers(tmp_path):
    ratios = tmp_path / "r.txt"
    ratios.write_text("1\n2\n3\n4\n")
    model, optimizer = one_step("owlore", gamma=2, rank=8, outlier_ratios_file=str(ratios), seed=0)
    projected = [p for p, state in optimizer.state.items() if "projector" in state]
    assert len(projected) == 2 * 7
    assert all(min(optimizer.state[p]["exp_avg"].shape) == 8 for p in projected)


def hand_computed_galore_step(weight: torch.Tensor, grad: torch.Tensor, *, rank: int, scale: float, lr: float,
                              weight_decay: float, betas=(0.9, 0.999), eps: float = 1e-6) -> torch.Tensor:
    """The weight after GaLore's first AdamW step, in float64 from the SVD up, without galore-torch.

    proj_type std: a matrix with rows >= cols is projected on the right (P = first `rank` rows of Vᵀ, low-rank
    gradient G Pᵀ, m x r), else on the left (P = first `rank` columns of U, Pᵀ G, r x n). Adam at step 1 on the
    low-rank gradient R: m = (1 - β1) R, v = (1 - β2) R², update m / (√v + ε) with the bias-corrected step size
    lr · √(1 - β2¹) / (1 - β1¹); projected back, times `scale`; then decoupled weight decay on the new weight.
    """
    beta1, beta2 = betas
    weight, grad = weight.double(), grad.double()
    left, _, right_t = torch.linalg.svd(grad, full_matrices=False)
    if grad.shape[0] >= grad.shape[1]:
        projector = right_t[:rank, :]                      # r x n
        low_rank = grad @ projector.T                      # m x r
    else:
        projector = left[:, :rank]                         # m x r
        low_rank = projector.T @ grad                      # r x n
    exp_avg = (1 - beta1) * low_rank
    exp_avg_sq = (1 - beta2) * low_rank * low_rank
    normalized = exp_avg / (exp_avg_sq.sqrt() + eps)
    step_size = lr * math.sqrt(1 - beta2) / (1 - beta1)
    back = normalized @ projector if grad.shape[0] >= grad.shape[1] else projector @ normalized
    updated = weight - step_size * scale * back
    return updated - lr * weight_decay * updated


@pytest.mark.parametrize("shape", [(8, 6), (6, 8)])  # tall: right projection; wide: left projection
def test_one_step_on_one_matrix_is_the_hand_computed_projected_adam_update(shape):
    rows, cols = shape
    rank, scale, lr, weight_decay = 2, 0.25, 1e-2, 0.1
    generator = torch.Generator().manual_seed(0)
    # one decoder layer holding one matrix: a GaLore target (every 2-D weight of the decoder layers is one)
    model = torch.nn.ModuleDict({"layers": torch.nn.ModuleList([torch.nn.Linear(cols, rows, bias=False)])})
    weight = model["layers"][0].weight
    with torch.no_grad():
        weight.copy_(torch.randn(shape, generator=generator))
    grad = torch.randn(shape, generator=generator)
    initial = weight.detach().clone()
    method = build_method("galore", {"rank": rank, "scale": scale, "update_proj_gap": 10, "proj_type": "std"})
    optimizer = method.build_optimizer(method.prepare(model), lr=lr, weight_decay=weight_decay)
    weight.grad = grad.clone()
    optimizer.step()
    expected = hand_computed_galore_step(initial, grad, rank=rank, scale=scale, lr=lr, weight_decay=weight_decay)
    assert tuple(optimizer.state[weight]["exp_avg"].shape) == ((rows, rank) if rows >= cols else (rank, cols))
    # float32 step vs float64 reference: the weights are O(1) and the update O(lr); 1e-6 absolute is ~10 ulp.
    torch.testing.assert_close(weight.detach().double(), expected, rtol=0, atol=1e-6)
    assert (weight.detach() - initial).abs().max() > 1e-3  # the step moved the weight: the comparison is not empty


@pytest.mark.parametrize("name, overrides", [
    ("galore", {"rank": 8, "scale": 1.0}),
    ("lisa", {"gamma": 2, "interval": 3}),
    ("owlore", {"gamma": 2, "interval": 5, "rank": 8}),
    ("owlore_fullrank", {"gamma": 2, "interval": 5}),
])
def test_loss_falls_when_overfitting_eight_examples(tmp_path, name, overrides):
    if name.startswith("owlore"):
        (tmp_path / "r.txt").write_text("1\n2\n3\n4\n")
        overrides = {**overrides, "outlier_ratios_file": str(tmp_path / "r.txt")}
    model, tokenizer = tiny_llama(seed=0)
    method = build_method(name, overrides)
    model = method.prepare(model)
    cfg = TrainConfig(steps=25, batch_size=8, max_length=64, lr=3e-3, schedule="constant", seed=0, progress=False,
                      memory_profile=False, device="cpu", dtype="fp32")
    summary = train(model, method, tiny_data(tokenizer), cfg, tmp_path / "run")
    losses = [row["loss"] for row in read_jsonl(tmp_path / "run" / "metrics.jsonl")]
    assert summary["status"] == "ok"
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, losses


@pytest.mark.slow
@pytest.mark.parametrize("name", ["galore", "owlore"])
def test_smollm2_runs_with_the_default_ranks(name):
    """SmolLM2: hidden 576, k/v 192 — owlore's rank 256 is clamped on k/v; both must take a step."""
    from owlore_bench.models import load_model

    model, tokenizer = load_model("smollm2-135m", dtype="fp32", device="cpu")
    method = build_method(name, {})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = method.prepare(model)
        optimizer = method.build_optimizer(model, lr=1e-4, weight_decay=0.0)
    clamped = [str(w.message) for w in caught if "galore rank" in str(w.message)]
    assert len(clamped) == (1 if name == "owlore" else 0)
    if name == "owlore":
        assert "of 60 matrices" in clamped[0]  # k_proj and v_proj of all 30 layers
    method.on_step_start(0, model, optimizer)
    examples = [tokenize_record(r, tokenizer, "plain", 32) for r in TINY_RECORDS]
    batch = TrainingData(examples, tokenizer.pad_token_id).batch(0, 2)
    loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
