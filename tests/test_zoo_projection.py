"""APOLLO, APOLLO-Mini, Fira and GaLore 8-bit: 3 steps through the suite's loop give the same weights as the
package's own optimizer stepped by hand over the package's own param groups (README form), the same batches and
the same LR schedule; the in-backward update gives the same weights as the step after backward; the memory
estimator covers each; a missing package is one line."""

from __future__ import annotations

import sys

import pytest
import torch
from zoo_reference import step_by_hand, tiny_data

from owlore_bench import UserError
from owlore_bench.config import TrainConfig
from owlore_bench.memory.estimate import estimate_memory
from owlore_bench.models import tiny_llama
from owlore_bench.registry import build_method
from owlore_bench.train.loop import train

LR, WEIGHT_DECAY, BATCH = 1e-2, 0.01, 4
LOOP = dict(steps=3, batch_size=BATCH, max_length=64, lr=LR, weight_decay=WEIGHT_DECAY, schedule="linear",
            warmup_steps=1, grad_clip=1.0, seed=0, progress=False, memory_profile=False, device="cpu", dtype="fp32")
# The loop's schedule for LOOP, written out: warmup (0 + 1) / (1 + 1), then linear to 0: 1 - 0/2, 1 - 1/2.
LR_MULTIPLIERS = [0.5, 1.0, 0.5]
GAP = 2  # update_proj_gap 2: the projection is refreshed at the 2nd optimizer step, inside the 3 steps compared



def suite_weights(name: str, overrides: dict, out_dir, **loop) -> dict[str, torch.Tensor]:
    model, tokenizer = tiny_llama(seed=0)
    method = build_method(name, overrides)
    model = method.prepare(model)
    summary = train(model, method, tiny_data(tokenizer), TrainConfig(**{**LOOP, **loop}), out_dir)
    assert summary["status"] == "ok", summary["error"]
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def reference_weights(make_optimizer) -> dict[str, torch.Tensor]:
    """The package's optimizer over its own groups, stepped by hand: clip to norm 1, step, LR by LR_MULTIPLIERS."""
    model, tokenizer = tiny_llama(seed=0)
    model.train()
    optimizer = make_optimizer(model)
    step_by_hand(model, optimizer, tiny_data(tokenizer), LR_MULTIPLIERS, BATCH)
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def readme_groups(model, **projected) -> list[dict]:
    """The param groups as the APOLLO / GaLore READMEs build them: attn/mlp Linear weights low-rank, the rest plain."""
    lowrank = [module.weight for name, module in model.named_modules()
               if isinstance(module, torch.nn.Linear) and ("attn" in name or "mlp" in name)]
    ids = {id(p) for p in lowrank}
    return [{"params": [p for p in model.parameters() if id(p) not in ids]}, {"params": lowrank, **projected}]


def apollo_reference(rank, scale, scale_type):
    from apollo_torch import APOLLOAdamW

    return lambda model: APOLLOAdamW(
        readme_groups(model, rank=rank, proj="random", scale_type=scale_type, scale=scale, update_proj_gap=GAP,
                      proj_type="std"), lr=LR, weight_decay=WEIGHT_DECAY)


def fira_reference(model):
    from fira import FiraAdamW, divide_params

    groups = divide_params(model, target_modules_list=["attn", "mlp"], rank=8, update_proj_gap=GAP, alpha=1.0)
    return FiraAdamW(groups, lr=LR, weight_decay=WEIGHT_DECAY, no_deprecation_warning=True)


def galore_8bit_reference(model):
    from galore_torch import GaLoreAdamW8bit

    groups = readme_groups(model, rank=8, update_proj_gap=GAP, scale=0.25, proj_type="std")
    optimizer = GaLoreAdamW8bit(groups, lr=LR, weight_decay=WEIGHT_DECAY)
    optimizer.args.max_unorm, optimizer.args.skip_zeros = 0.0, False  # what galore-torch meant (methods/galore_8bit)
    return optimizer


CASES = {
    "apollo": ({"rank": 8, "update_proj_gap": GAP}, apollo_reference(8, 1.0, "channel")),
    "apollo_mini": ({"update_proj_gap": GAP}, apollo_reference(1, 128.0, "tensor")),
    "fira": ({"rank": 8, "update_proj_gap": GAP}, fira_reference),
    "galore_8bit": ({"rank": 8, "update_proj_gap": GAP}, galore_8bit_reference),
}


@pytest.fixture
def no_cuda_synchronize(monkeypatch):
    """galore-torch's 8-bit step calls torch.cuda.synchronize(), which raises on a CPU-only torch (the reference
    side calls the package directly, so it needs the no-op that methods/galore_8bit.py applies off CUDA)."""
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)


@pytest.mark.parametrize("name", list(CASES))
def test_three_loop_steps_equal_the_package_optimizer_stepped_by_hand(name, tmp_path, no_cuda_synchronize):
    overrides, make_reference = CASES[name]
    suite = suite_weights(name, overrides, tmp_path)
    reference = reference_weights(make_reference)
    initial = dict(tiny_llama(seed=0)[0].named_parameters())
    assert suite.keys() == reference.keys()
    for key, weight in suite.items():
        # Same ops in the same order on the same numbers: equal to the last bit (tolerance 0).
        torch.testing.assert_close(weight, reference[key], rtol=0, atol=0, msg=f"{name}: {key}")
        assert not torch.equal(weight, initial[key]), f"{name}: {key} did not train"


@pytest.mark.parametrize("name", list(CASES))
def test_update_in_backward_gives_the_weights_of_the_step_after_backward(name, tmp_path):
    overrides, _ = CASES[name]
    after = suite_weights(name, overrides, tmp_path / "after", grad_clip=0.0)
    inside = suite_weights(name, overrides, tmp_path / "inside", grad_clip=0.0, update_in_backward=True)
    for key, weight in after.items():
        torch.testing.assert_close(inside[key], weight, rtol=0, atol=0, msg=f"{name}: {key}")


def test_galore_8bit_keeps_uint8_moments_for_tensors_of_4096_elements_or_more():
    model, tokenizer = tiny_llama(seed=0)
    method = build_method("galore_8bit", {"rank": 8})
    model = method.prepare(model)
    optimizer = method.build_optimizer(model, lr=LR, weight_decay=0.0)
    model(**tiny_data(tokenizer).batch(0, BATCH)).loss.backward()
    optimizer.step()
    embedding = model.model.embed_tokens.weight  # 259 x 64: plain group, 16576 elements
    up_proj = model.model.layers[0].mlp.up_proj.weight  # 128 x 64, projected to 128 x 8 = 1024 elements
    assert optimizer.state[embedding]["state1"].dtype == torch.uint8
    assert tuple(optimizer.state[up_proj]["state1"].shape) == (128, 8)
    assert optimizer.state[up_proj]["state1"].dtype == torch.float32  # under bitsandbytes' min_8bit_size


def test_the_estimator_steps_each_method_on_fake_tensors_and_sees_the_state_shrink():
    optimizer_bytes = {name: estimate_memory("tiny-llama", name, {"rank": 8} if name != "apollo_mini" else {},
                                             batch_size=1, seq_len=8, dtype="fp32")["optimizer"]
                       for name in ["galore", *CASES]}
    # Same rank-8 projected moments for galore and apollo (APOLLO's saving is its lower rank); Mini's are rank 1;
    # 8-bit states are a quarter of fp32 ones where bitsandbytes quantises.
    assert optimizer_bytes["apollo_mini"] < optimizer_bytes["apollo"]
    assert optimizer_bytes["galore_8bit"] < optimizer_bytes["galore"]
    assert all(value > 0 for value in optimizer_bytes.values()), optimizer_bytes


@pytest.mark.parametrize("name, module", [("apollo", "apollo_torch"), ("fira", "fira"),
                                          ("galore_8bit", "bitsandbytes")])
def test_a_missing_package_is_one_line_naming_the_extra(name, module, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    model, _ = tiny_llama(seed=0)
    method = build_method(name)
    with pytest.raises(UserError) as caught:
        method.build_optimizer(method.prepare(model), lr=LR, weight_decay=0.0)
    message = str(caught.value)
    assert "\n" not in message and "pip install 'owlore-bench[zoo]'" in message and name in message
