"""Zoo group B (adam_mini, badam, lomo, adalomo): 3 steps of the suite's loop on tiny-llama give the weights that
calling each reference package directly gives on the same model and batches; the estimator covers each; a
missing package, update_in_backward and data parallel where they cannot work are one line each.

Tolerance of every equivalence: fp32, rtol 1e-6 and atol 1e-7 per tensor (measured: bit-identical).
"""

from __future__ import annotations

import sys
import tempfile

import pytest
import torch

from owlore_bench.config import TrainConfig
from owlore_bench.errors import UserError
from owlore_bench.memory.estimate import SyntheticBatches, estimate_memory, measure_memory, measured_ledger
from owlore_bench.models import tiny_llama, tiny_llama_config
from owlore_bench.registry import build_method
from owlore_bench.train.loop import train
from owlore_bench.train.step_in_backward import check_supported

STEPS, ROWS, LENGTH, LR, WEIGHT_DECAY = 3, 2, 16, 1e-3, 0.01
BADAM_SEED = 7


def batches(vocab_size: int) -> SyntheticBatches:
    return SyntheticBatches(vocab_size, LENGTH, seed=0)


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def through_the_suite(name: str, config: dict, update_in_backward: bool = False, method=None, out_dir=None,
                      status: str = "ok", **settings) -> tuple[dict, dict]:
    """(summary, weights) after STEPS steps of the suite's loop on tiny-llama (seed 0), constant LR, no clipping."""
    model, _ = tiny_llama(seed=0)
    method = method or build_method(name, config)
    model = method.prepare(model)
    cfg = TrainConfig(**{"steps": STEPS, **settings}, batch_size=ROWS, max_length=LENGTH, lr=LR,
                      weight_decay=WEIGHT_DECAY, grad_clip=0.0, schedule="constant",
                      update_in_backward=update_in_backward, progress=False, device="cpu", dtype="fp32")
    with tempfile.TemporaryDirectory() as scratch:
        summary = train(model, method, batches(model.config.vocab_size), cfg, out_dir or scratch)
    assert summary["status"] == status, summary["error"]
    return summary, weights(model)


def directly(make_optimizer, step) -> dict:
    """Weights after STEPS steps of the package's optimizer driven by hand on the same model and batches."""
    model, _ = tiny_llama(seed=0)
    optimizer = make_optimizer(model)
    data = batches(model.config.vocab_size)
    for index in range(STEPS):
        step(model, optimizer, model(**data.batch(index, ROWS)).loss)
    return weights(model)


def plain_step(model, optimizer, loss):
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def assert_same_weights(suite: dict, reference: dict) -> None:
    initial = weights(tiny_llama(seed=0)[0])
    assert any(not torch.equal(reference[name], initial[name]) for name in reference), "nothing trained"
    for name, expected in reference.items():
        torch.testing.assert_close(suite[name], expected, rtol=1e-6, atol=1e-7, msg=name)


def adam_mini_directly(model):
    from adam_mini import Adam_mini

    c = model.config
    return Adam_mini(named_parameters=model.named_parameters(), lr=LR, betas=(0.9, 0.999), eps=1e-8,
                     weight_decay=WEIGHT_DECAY, dim=c.hidden_size, n_heads=c.num_attention_heads,
                     n_kv_heads=c.num_key_value_heads, verbose=False)


@pytest.mark.parametrize("update_in_backward", [False, True], ids=["step", "in-backward"])
def test_adam_mini_equals_the_package(update_in_backward):
    _, suite = through_the_suite("adam_mini", {}, update_in_backward=update_in_backward)
    assert_same_weights(suite, directly(adam_mini_directly, plain_step))


def badam_directly(switch_mode: str):
    def make(model):
        import badam

        named = list(model.named_parameters())
        base = torch.optim.AdamW([p for _, p in named], lr=LR, weight_decay=WEIGHT_DECAY, betas=(0.9, 0.999),
                                 eps=1e-8)
        torch.manual_seed(BADAM_SEED)  # the package draws its random block order from the global generator
        return badam.BlockOptimizer(base, named, switch_block_every=2, switch_mode=switch_mode, verbose=0)

    return make


@pytest.mark.parametrize("switch_mode", ["random"])  # the package's default order; the others are deterministic
def test_badam_layer_mode_equals_the_package_across_a_block_switch(tmp_path, switch_mode):
    """K = 2: the package switches after the first step (its (global_step + 1) % K rule), so 3 steps train
    two blocks; both trained blocks moved, the others did not."""
    summary, suite = through_the_suite("badam", {"switch_every": 2, "switch_mode": switch_mode, "seed": BADAM_SEED})
    assert_same_weights(suite, directly(badam_directly(switch_mode), plain_step))
    initial = weights(tiny_llama(seed=0)[0])
    moved = {name.split(".")[2] for name in suite if "layers." in name and not torch.equal(suite[name], initial[name])}
    assert len(moved) == 2, moved
    assert summary["trainable_params"] < sum(v.numel() for v in initial.values()) / 3  # one layer at a time


def test_badam_resumes_from_a_checkpoint_inside_a_block_to_the_same_weights(tmp_path):
    """Stopped after 2 of 4 steps (K = 2: the checkpoint falls inside the second block), then resumed: the same
    block, master copies, Adam state and switch bookkeeping, so the same weights as 4 straight steps."""
    config = {"switch_every": 2, "switch_mode": "random", "seed": BADAM_SEED}
    _, straight = through_the_suite("badam", config, steps=4)
    method = build_method("badam", config)
    original = method.on_step_start

    def crash_at_three(step, model, optimizer):
        if step == 3:
            raise RuntimeError("simulated crash")
        return original(step, model, optimizer)

    method.on_step_start = crash_at_three
    crashed, _ = through_the_suite("badam", config, method=method, out_dir=tmp_path, steps=4, checkpoint_every=2,
                                   status="failed")
    resumed, weights_after = through_the_suite("badam", config, out_dir=tmp_path, steps=4, checkpoint_every=2)
    assert (tmp_path / "checkpoint").is_dir() and resumed["status"] == "ok"
    for name, expected in straight.items():
        torch.testing.assert_close(weights_after[name], expected, rtol=1e-6, atol=1e-7, msg=name)


def test_badam_ratio_mode_equals_the_package():
    """The ratio mode's sparse gradients cannot be read by the memory ledger, so this run has memory_profile off."""
    _, suite = through_the_suite("badam", {"mode": "ratio", "switch_every": 2}, memory_profile=False)

    def make(model):
        import badam

        named = list(model.named_parameters())
        return badam.BlockOptimizerRatio(param_groups=[{"params": [p for _, p in named]}],
                                         named_parameters_list=named, switch_every=2, update_ratio=0.1,
                                         mask_mode="adjacent", lr=LR, betas=(0.9, 0.999), eps=1e-8, verbose=0)

    assert_same_weights(suite, directly(make, plain_step))


def fused_step(model, optimizer, loss):
    optimizer.fused_backward(loss, LR)  # the package's own fused path: its hooks update inside backward


@pytest.mark.parametrize("update_in_backward", [True, False], ids=["fused", "after-backward"])
def test_lomo_equals_the_packages_fused_backward(update_in_backward):
    from lomo_optim import Lomo

    fused, suite = through_the_suite("lomo", {}, update_in_backward=update_in_backward)
    assert_same_weights(suite, directly(lambda model: Lomo(model, lr=LR, weight_decay=WEIGHT_DECAY), fused_step))
    assert fused["peak_mem_optimizer_bytes"] == 0  # no optimizer state at all


def test_adalomo_equals_the_packages_fused_backward(monkeypatch):
    """The package puts its state on .cuda(): on this CPU the reference side makes .cuda() a no-op. It also
    scales the loss by 2^10 (exact in fp32), which the suite leaves out."""
    from lomo_optim import AdaLomo

    fused, suite = through_the_suite("adalomo", {}, update_in_backward=True)
    monkeypatch.setattr(torch.Tensor, "cuda", lambda tensor, *args, **kwargs: tensor)
    reference = directly(lambda model: AdaLomo(model, lr=LR, weight_decay=WEIGHT_DECAY), fused_step)
    assert_same_weights(suite, reference)
    model = tiny_llama(seed=0)[0]
    factored = sum(4 * (p.shape[0] + (p.shape[1] if p.dim() == 2 else 0)) for p in model.parameters())
    assert fused["peak_mem_optimizer_bytes"] == factored  # a row and a column vector per matrix, fp32


@pytest.mark.parametrize("name, update_in_backward", [
    ("adam_mini", False), ("adam_mini", True), ("badam", False), ("lomo", True), ("adalomo", True),
])
def test_estimator_equals_the_measured_ledger(name, update_in_backward):
    """FakeTensorMode covers every method: weights, gradients and optimizer state to the byte."""
    shape = dict(batch_size=2, seq_len=16, dtype="fp32", seed=3, update_in_backward=update_in_backward)
    arch = tiny_llama_config()
    estimate = estimate_memory(arch, name, **shape)
    summary = measure_memory(arch, name, steps=1, device="cpu", **shape)
    assert summary["status"] == "ok", summary["error"]
    measured = measured_ledger(summary)
    for category in ("weights", "gradients", "optimizer"):
        assert estimate[category] == measured[category], (category, estimate, measured)
    assert measured["optimizer"] > 0 or name == "lomo"


def test_a_missing_package_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "adam_mini", None)  # `import adam_mini` now raises ImportError
    model, _ = tiny_llama(seed=0)
    with pytest.raises(UserError, match=r"adam-mini: pip install 'owlore-bench\[zoo\]'") as error:
        build_method("adam_mini").build_optimizer(model, lr=LR, weight_decay=0.0)
    assert "\n" not in str(error.value)


def test_data_parallel_and_update_in_backward_where_they_cannot_work_are_one_line():
    one_process = TrainConfig()
    with pytest.raises(UserError, match=r"--nproc 2: method 'badam' cannot train data parallel \(ratio mode"):
        check_supported(build_method("badam", {"mode": "ratio"}), one_process, world_size=2)
    check_supported(build_method("badam"), one_process, world_size=2)  # layer mode: sound, allowed
    check_supported(build_method("adam_mini"), one_process, world_size=2)
    fused = TrainConfig(update_in_backward=True, grad_clip=0.0)
    with pytest.raises(UserError, match="averaged over the 2 ranks after backward"):
        check_supported(build_method("lomo"), fused, world_size=2)
    with pytest.raises(UserError, match="not offered for method 'badam'"):
        check_supported(build_method("badam"), fused)
    with pytest.warns(UserWarning, match="lomo.*update_in_backward: true"):
        check_supported(build_method("lomo"), one_process)
