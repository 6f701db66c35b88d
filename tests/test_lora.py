"""LoRA through peft: merging keeps the function, and training touches only the adapters."""

from __future__ import annotations

import torch

from owlore_bench.config import TrainConfig
from owlore_bench.methods.lora import LLAMA_PROJECTIONS
from owlore_bench.models import tiny_llama
from owlore_bench.registry import build_method
from owlore_bench.train.data import TrainingData
from owlore_bench.train.loop import train


def test_lora_targets_all_seven_llama_projections_by_default():
    model, _ = tiny_llama()
    model = build_method("lora").prepare(model)
    adapted = {name.split(".")[-1] for name, module in model.named_modules() if hasattr(module, "lora_A")}
    assert adapted == set(LLAMA_PROJECTIONS)


def test_only_lora_parameters_change_and_merged_logits_match_unmerged(tmp_path, tiny_data):
    # HF's standard init scale (logits of order 1), where an fp32 merge is expected to agree to 1e-5
    model, tokenizer = tiny_llama(initializer_range=0.02)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    method = build_method("lora", {"r": 4, "dropout": 0.0})
    model = method.prepare(model)
    data = TrainingData.from_file(tiny_data, tokenizer, 64, "plain")
    summary = train(model, method, data, TrainConfig(steps=5, batch_size=4, lr=1e-2, progress=False), tmp_path)
    assert summary["status"] == "ok"

    changed = {name for name, p in model.named_parameters() if "lora_" not in name
               and not torch.equal(p, before[name.replace("base_model.model.", "").replace(".base_layer", "")])}
    assert changed == set(), f"frozen weights changed: {sorted(changed)[:5]}"
    assert any(not torch.all(p == 0) for name, p in model.named_parameters() if "lora_B" in name)

    batch = data.batch(0, 4)
    model.eval()
    with torch.no_grad():
        unmerged = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        merged_model = method.for_eval(model)
        merged = merged_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert not any("lora_" in name for name, _ in merged_model.named_parameters())
    torch.testing.assert_close(merged, unmerged, atol=1e-5, rtol=0)
