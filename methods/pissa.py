"""PiSSA through peft: LoRA initialised from the principal singular vectors of each weight (`init_lora_weights=
"pissa"`); the frozen base weight becomes the residual W - B0 A0.

Defaults from peft's examples/pissa_finetuning/README.md (its decomposition command): r 32, alpha 32 (PiSSA wants
alpha = r: scaling 1), dropout 0. The exact SVD ("pissa"), not peft's fast "pissa_niter_n": reloading an adapter
(`PeftModel.from_pretrained`, Method.load_trained) redoes the SVD on the original weights, and only the exact one
is deterministic, so only it rebuilds the residual the adapter was trained on.
"""

from __future__ import annotations

from pydantic import Field

from owlore_bench import register_method
from owlore_bench.methods.lora import LoRA, LoraMethodConfig


class PissaConfig(LoraMethodConfig):
    r: int = Field(32, gt=0, description="adapter rank: the number of principal singular vectors (peft example: 32)")
    alpha: float = Field(32.0, gt=0, description="lora_alpha; PiSSA's init assumes alpha / r = 1 (peft example: 32)")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the adapter input (peft example: 0)")


@register_method("pissa")
class PiSSA(LoRA):
    """PiSSA (peft init pissa): adapters from the top-r singular vectors, base weights the residual; merged for eval."""

    Config = PissaConfig

    def lora_options(self) -> dict:
        return {"init_lora_weights": "pissa"}
