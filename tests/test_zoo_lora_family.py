"""DoRA, PiSSA, rsLoRA and LoRA+ as `lora` variants: 3 steps through the suite's loop give the same weights as
peft's own model (LoraConfig with the variant's switch) and optimizer stepped by hand; each variant's peft switch
is really on; PiSSA's saved adapter reloads onto the original base weights."""

from __future__ import annotations

import math

import pytest
import torch
from zoo_reference import step_by_hand, tiny_data

from owlore_bench.config import TrainConfig
from owlore_bench.methods.lora import LLAMA_PROJECTIONS
from owlore_bench.models import tiny_llama
from owlore_bench.registry import build_method
from owlore_bench.train.loop import train

LR, WEIGHT_DECAY, BATCH = 1e-2, 0.01, 4
LOOP = dict(steps=3, batch_size=BATCH, max_length=64, lr=LR, weight_decay=WEIGHT_DECAY, schedule="linear",
            warmup_steps=1, grad_clip=1.0, seed=0, progress=False, memory_profile=False, device="cpu", dtype="fp32")
LR_MULTIPLIERS = [0.5, 1.0, 0.5]  # LOOP's schedule written out: warmup (0 + 1) / 2, then linear 1 - 0/2, 1 - 1/2
SMALL = {"r": 4, "alpha": 8.0, "dropout": 0.0}  # dropout 0: no random masks to line up between the two sides

# name → (peft LoraConfig switches, optimizer built by hand over the peft model)
VARIANTS = {
    "dora": {"use_dora": True},
    "pissa": {"init_lora_weights": "pissa"},
    "rslora": {"use_rslora": True},
    "lora_plus": {},
}



def suite_model(name: str, out_dir, **overrides):
    model, tokenizer = tiny_llama(seed=0)
    method = build_method(name, {**SMALL, **overrides})
    torch.manual_seed(0)  # as train_run: adapter initialisation draws random numbers
    model = method.prepare(model)
    summary = train(model, method, tiny_data(tokenizer), TrainConfig(**LOOP), out_dir)
    assert summary["status"] == "ok", summary["error"]
    return method, model, tokenizer


def reference_model(name: str):
    """peft's get_peft_model with the variant's switch, then AdamW (LoRA+: peft's create_loraplus_optimizer with the
    paper's ratio 16) stepped by hand: clip to norm 1, step, LR by LR_MULTIPLIERS."""
    from peft import LoraConfig, get_peft_model
    from peft.optimizers import create_loraplus_optimizer

    model, tokenizer = tiny_llama(seed=0)
    torch.manual_seed(0)
    model = get_peft_model(model, LoraConfig(r=SMALL["r"], lora_alpha=SMALL["alpha"], lora_dropout=0.0,
                                             target_modules=list(LLAMA_PROJECTIONS), task_type="CAUSAL_LM",
                                             **VARIANTS[name]))
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    if name == "lora_plus":
        optimizer = create_loraplus_optimizer(model, torch.optim.AdamW, lr=LR, loraplus_lr_ratio=16.0,
                                              weight_decay=WEIGHT_DECAY)
    else:
        optimizer = torch.optim.AdamW(trainable, lr=LR, weight_decay=WEIGHT_DECAY)
    step_by_hand(model, optimizer, tiny_data(tokenizer), LR_MULTIPLIERS, BATCH)
    return model


@pytest.mark.parametrize("name", list(VARIANTS))
def test_three_loop_steps_equal_peft_stepped_by_hand(name, tmp_path):
    _, suite, _ = suite_model(name, tmp_path)
    reference = dict(reference_model(name).named_parameters())
    weights = dict(suite.named_parameters())
    assert weights.keys() == reference.keys()
    trained = [key for key, p in weights.items() if p.requires_grad]
    assert trained and trained == [key for key, p in reference.items() if p.requires_grad]
    for key, weight in weights.items():
        # Same ops in the same order on the same numbers: equal to the last bit (tolerance 0).
        torch.testing.assert_close(weight, reference[key], rtol=0, atol=0, msg=f"{name}: {key}")
    assert not torch.all(weights[next(k for k in trained if "lora_B" in k)] == 0)  # the adapters did move


def lora_layers(model):
    return [module for module in model.modules() if hasattr(module, "lora_A") and hasattr(module, "scaling")]


def test_each_variant_switches_on_its_own_peft_mechanism():
    prepared = {name: build_method(name).prepare(tiny_llama(seed=0)[0]) for name in VARIANTS}
    dora = lora_layers(prepared["dora"])
    assert len(dora) == 7 * 4 and all(layer.use_dora["default"] for layer in dora)
    assert {layer.r["default"] for layer in dora} == {32}  # DoRA's r 32, alpha 64: scaling 2
    assert {layer.scaling["default"] for layer in lora_layers(prepared["rslora"])} == {16 / math.sqrt(8)}
    assert {layer.scaling["default"] for layer in lora_layers(prepared["pissa"])} == {1.0}  # alpha = r = 32
    optimizer = build_method("lora_plus").build_optimizer(prepared["lora_plus"], lr=1e-3, weight_decay=0.0)
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    named = dict(prepared["lora_plus"].named_parameters())
    assert {lr_of[id(p)] for key, p in named.items() if "lora_A" in key} == {1e-3}
    assert {lr_of[id(p)] for key, p in named.items() if "lora_B" in key} == {1e-3 * 16}


def test_pissa_starts_from_the_same_function_with_principal_adapters_and_residual_base():
    model, tokenizer = tiny_llama(seed=0)
    original = model.model.layers[0].mlp.up_proj.weight.detach().clone()
    batch = tiny_data(tokenizer).batch(0, BATCH)
    with torch.no_grad():
        before = model(**batch).logits
        model = build_method("pissa", {"r": 4, "alpha": 4.0}).prepare(model)
        after = model(**batch).logits
    layer = model.base_model.model.model.layers[0].mlp.up_proj
    residual = layer.base_layer.weight
    torch.testing.assert_close(after, before, rtol=0, atol=1e-4)  # PiSSA keeps W = W_res + B A at step 0
    assert (residual - original).abs().max() > 1e-2  # the base weight is now the residual
    top = torch.linalg.svdvals(original)[:4]
    adapter = layer.lora_B["default"].weight @ layer.lora_A["default"].weight
    torch.testing.assert_close(torch.linalg.svdvals(adapter)[:4], top, rtol=1e-4, atol=1e-5)  # B A: W's top 4


def test_trained_pissa_adapter_reloads_onto_the_original_base_model(tmp_path, monkeypatch):
    import owlore_bench.models as models

    method, model, tokenizer = suite_model("pissa", tmp_path / "run")
    method.save_trained(model, tokenizer, tmp_path / "saved")
    monkeypatch.setattr(models, "load_model", lambda name, dtype, device: tiny_llama(seed=0))  # the base model
    loaded, _ = method.load_trained(tmp_path / "saved", "tiny-llama", "fp32", "cpu")
    batch = tiny_data(tokenizer).batch(0, BATCH)
    model.eval()
    loaded.eval()
    with torch.no_grad():
        trained_logits = model(**batch).logits
        reloaded_logits = method.for_eval(loaded)(**batch).logits
    torch.testing.assert_close(reloaded_logits, trained_logits, rtol=0, atol=1e-4)


def test_each_default_is_its_references():
    defaults = {name: build_method(name).config for name in ["dora", "pissa", "rslora", "lora_plus"]}
    assert (defaults["dora"].r, defaults["dora"].alpha, defaults["dora"].dropout) == (32, 64.0, 0.05)
    assert (defaults["pissa"].r, defaults["pissa"].alpha, defaults["pissa"].dropout) == (32, 32.0, 0.0)
    assert (defaults["rslora"].r, defaults["rslora"].alpha) == (8, 16.0)
    assert (defaults["lora_plus"].lr_ratio, defaults["lora_plus"].lr_embedding) == (16.0, 1e-6)
