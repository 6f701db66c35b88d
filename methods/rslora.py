"""rsLoRA through peft: LoRA scaled by alpha / sqrt(r) instead of alpha / r (peft's `use_rslora=True`).

rsLoRA (Kalajdzievski 2023, arXiv 2312.03732) changes only the scaling factor, so that higher ranks keep learning;
it sets no other hyperparameter, so the defaults are `lora`'s (r 8, alpha 16, dropout 0.05): the scaling is then
16 / sqrt(8) = 5.66 where `lora` has 2.
"""

from __future__ import annotations

from owlore_bench import register_method
from owlore_bench.methods.lora import LoRA


@register_method("rslora")
class RsLoRA(LoRA):
    """rsLoRA (peft use_rslora): LoRA with the rank-stabilised scaling alpha / sqrt(r); merged for eval."""

    def lora_options(self) -> dict:
        return {"use_rslora": True}
