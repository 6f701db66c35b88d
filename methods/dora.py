"""DoRA through peft: LoRA with the weight split into magnitude and direction (peft's `use_dora=True`).

Defaults from the DoRA reference (NVlabs/DoRA, commonsense_reasoning/README.md: `llama_7B_Dora.sh 32 64`, its
finetune.py's lora_dropout 0.05): r 32, alpha 64, dropout 0.05. Targets: the suite's seven Llama projections, as
`lora` (the DoRA scripts adapt q, k, v, up and down only), so the two differ only in the decomposition.
"""

from __future__ import annotations

from pydantic import Field

from owlore_bench import register_method
from owlore_bench.methods.lora import LoRA, LoraMethodConfig


class DoraConfig(LoraMethodConfig):
    r: int = Field(32, gt=0, description="adapter rank (DoRA's commonsense script: 32)")
    alpha: float = Field(64.0, gt=0, description="lora_alpha; the update is scaled by alpha / r (DoRA's script: 64)")


@register_method("dora")
class DoRA(LoRA):
    """DoRA (peft use_dora): LoRA on direction plus a trained magnitude vector per adapted weight; merged for eval."""

    Config = DoraConfig

    def lora_options(self) -> dict:
        return {"use_dora": True}
