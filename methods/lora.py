"""LoRA through peft: low-rank adapters on the attention and MLP projections, base weights frozen.

Targets follow the architecture. The default list is the seven Llama projections (q, k, v, o, gate, up, down; not
peft's own Llama default, q and v only); a model that lacks any of those names (Phi-3's fused qkv_proj, GPT-2's
c_attn, OPT's fc1, Falcon's query_key_value, ...) gets peft's "all-linear" instead: every nn.Linear / Conv1D but
the output layer. Any other list, or "all-linear" itself, is used as given, and a name that matches no module is
refused in one line that lists the model's linear-module names. summary.json records the adapted modules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field

from owlore_bench import Method, MethodConfig, UserError, register_method
from owlore_bench.train.layers import name_patterns

LLAMA_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ALL_LINEAR = "all-linear"


class LoraMethodConfig(MethodConfig):
    r: int = Field(8, gt=0, description="adapter rank")
    alpha: float = Field(16.0, gt=0, description="lora_alpha; the update is scaled by alpha / r")
    dropout: float = Field(0.05, ge=0, lt=1, description="dropout on the adapter input")
    target_modules: list[str] | Literal["all-linear"] = Field(
        default_factory=lambda: list(LLAMA_PROJECTIONS), min_length=1,
        description="module names that get adapters (peft matches a name or a dotted suffix), or all-linear "
                    "(peft's: every linear layer but the output). Default: the seven Llama projections, and "
                    "all-linear on a model that lacks any of them",
    )


def linear_module_names(model: torch.nn.Module) -> list[str]:
    """The distinct last names of the model's nn.Linear and Conv1D modules (what target_modules can name)."""
    from transformers.pytorch_utils import Conv1D

    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                   if name and isinstance(module, (torch.nn.Linear, Conv1D))})


def resolved_targets(model: torch.nn.Module, wanted: list[str] | str, field: str) -> list[str] | str:
    """The target_modules to give peft for this model: the default list, or all-linear where the model lacks any of
    its names; any other list as given, after checking each name matches a module (peft's rule: the module's name
    or a dotted suffix of it)."""
    if wanted == ALL_LINEAR:
        return ALL_LINEAR
    names = [name for name, _ in model.named_modules() if name]
    missing = [target for target in wanted
               if not any(name == target or name.endswith(f".{target}") for name in names)]
    if missing and list(wanted) == LLAMA_PROJECTIONS:
        return ALL_LINEAR  # not Llama-shaped: the default's meaning on any architecture
    if missing:
        raise UserError(f"{field}: {missing} match no module of {type(model).__name__}; its linear modules are "
                        f"named {', '.join(linear_module_names(model))} (or use target_modules: all-linear)")
    return list(wanted)


@register_method("lora")
class LoRA(Method):
    """LoRA (peft): rank-r adapters on all seven projections; merged into the weights for evaluation."""

    Config = LoraMethodConfig
    reference_package = "peft"
    no_update_in_backward = "its adapter gradients are a few MiB, so there is no gradient memory to save"

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        from peft import LoraConfig, get_peft_model

        targets = resolved_targets(model, self.config.target_modules, f"{self.name or 'lora'}.target_modules")
        config = LoraConfig(r=self.config.r, lora_alpha=self.config.alpha, lora_dropout=self.config.dropout,
                            target_modules=targets, task_type="CAUSAL_LM", **self.lora_options())
        model = get_peft_model(model, config)
        self.adapted = {"target_modules": targets,
                        "adapted_modules": name_patterns(model.base_model.targeted_module_names)}
        return model

    def run_info(self) -> dict[str, Any]:
        return dict(getattr(self, "adapted", {}))

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
