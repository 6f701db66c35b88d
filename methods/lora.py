"""LoRA through peft: low-rank adapters on the attention and MLP projections, base weights frozen."""

from __future__ import annotations

from pathlib import Path

import torch
from pydantic import Field

from owlore_bench import Method, MethodConfig, UserError, register_method

LLAMA_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class LoraMethodConfig(MethodConfig):
    r: int = Field(8, gt=0, description="adapter rank")
    alpha: float = Field(16.0, gt=0, description="lora_alpha; the update is scaled by alpha / r")
    dropout: float = Field(0.05, ge=0, lt=1, description="dropout on the adapter input")
    target_modules: list[str] = Field(
        default_factory=lambda: list(LLAMA_PROJECTIONS),
        description="module names that get adapters (default: all seven Llama projections, not peft's q/v)",
    )


@register_method("lora")
class LoRA(Method):
    """LoRA (peft): rank-r adapters on all seven projections; merged into the weights for evaluation."""

    Config = LoraMethodConfig
    reference_package = "peft"
    no_update_in_backward = "its adapter gradients are a few MiB, so there is no gradient memory to save"

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        from peft import LoraConfig, get_peft_model

        present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        missing = [target for target in self.config.target_modules if target not in present]
        if missing:
            raise UserError(f"{self.name or 'lora'}.target_modules: {missing} not found in the model; "
                            f"it has e.g. {sorted(present)[:12]}")
        config = LoraConfig(r=self.config.r, lora_alpha=self.config.alpha, lora_dropout=self.config.dropout,
                            target_modules=list(self.config.target_modules), task_type="CAUSAL_LM",
                            **self.lora_options())
        return get_peft_model(model, config)

    def lora_options(self) -> dict:
        """Extra peft LoraConfig keywords of a LoRA variant (use_dora, use_rslora, init_lora_weights); none here."""
        return {}

    def for_eval(self, model: torch.nn.Module) -> torch.nn.Module:
        return model.merge_and_unload()

    def save_trained(self, model, tokenizer, path: Path) -> None:
        model.save_pretrained(path)  # the adapter only; load_trained puts it back on the base model
        tokenizer.save_pretrained(path)

    def load_trained(self, path: Path, base_model: str, dtype: str, device: str):
        from peft import PeftModel

        from owlore_bench.models import load_model

        base, tokenizer = load_model(base_model, dtype=dtype, device=device)
        return PeftModel.from_pretrained(base, path), tokenizer
