"""Full fine-tuning: every parameter trainable, AdamW. The baseline every table is measured against.

This is the smallest method and the template for a new one: a config class, a Method subclass, a decorator.
"""

from __future__ import annotations

import torch
from pydantic import Field

from owlore_bench import Method, MethodConfig, register_method


class FullFTConfig(MethodConfig):
    betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW (beta1, beta2)")
    eps: float = Field(1e-8, gt=0, description="AdamW epsilon")


@register_method("full_ft")
class FullFineTuning(Method):
    """Full fine-tuning: all parameters trained with AdamW (the baseline)."""

    Config = FullFTConfig
    reference_package = "torch"

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        model.requires_grad_(True)
        return model

    def build_optimizer(self, model, lr, weight_decay):
        params = [p for p in model.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=self.config.betas, eps=self.config.eps)
