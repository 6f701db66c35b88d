"""LoRA+ through peft: LoRA whose B matrices train at `lr_ratio` times the learning rate of the A matrices
(peft.optimizers.create_loraplus_optimizer, AdamW).

Defaults: `lr_ratio` 16 (LoRA+, Hayou et al. 2024, arXiv 2402.12354: the ratio 2^4 it recommends, also in
nikhil-ghosh-berkeley/loraplus's README); `lr_embedding` 1e-6 (peft's default for adapters on embeddings, none
by default here); adapters as `lora` (r 8, alpha 16, dropout 0.05). The LR schedule scales every group alike.
"""

from __future__ import annotations

import torch
from pydantic import Field

from owlore_bench import register_method
from owlore_bench.methods.lora import LoRA, LoraMethodConfig


class LoraPlusConfig(LoraMethodConfig):
    lr_ratio: float = Field(16.0, ge=1, description="learning rate of the B matrices / that of the A matrices (≥ 1)")
    lr_embedding: float = Field(1e-6, gt=0, description="learning rate of adapters on embedding layers (peft's)")


@register_method("lora_plus")
class LoraPlus(LoRA):
    """LoRA+ (peft create_loraplus_optimizer): LoRA whose B matrices train at 16× the lr of A; merged for eval."""

    Config = LoraPlusConfig

    def build_optimizer(self, model, lr, weight_decay):
        from peft.optimizers import create_loraplus_optimizer

        return create_loraplus_optimizer(model, torch.optim.AdamW, lr=lr, loraplus_lr_ratio=self.config.lr_ratio,
                                         loraplus_lr_embedding=self.config.lr_embedding, weight_decay=weight_decay)
