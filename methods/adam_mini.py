"""Adam-mini (adam-mini 1.1.1, the authors' package): Adam with one second-moment value per parameter block.

Every parameter trains, as in full FT; only the optimizer differs. Adam-mini partitions by the parameter NAMES
(embed/lm_head: one value per token row; q_proj/k_proj: one per head; v/o/mlp: one per output neuron; norms: one
per tensor), so it is built over `model.named_parameters()` with the architecture's hidden size and head counts,
as its README shows. That leaves about half of AdamW's optimizer state (the first moment stays full size).

Defaults: the package's own (betas (0.9, 0.999), eps 1e-8: its README says to use AdamW's values). One change
to the package's behaviour: it reads `torch.cuda.device_count()` as the number of ranks among which parameters
are SHARDED and all-gathers block sizes across them (for FSDP / ZeRO). The suite never shards parameters (its
data parallel replicates them and averages gradients before the step), so the optimizer's world size is pinned
to 1: every rank then computes the same update with no collective, on one process or on N.
"""

from __future__ import annotations

import torch
from pydantic import Field

from owlore_bench import MethodConfig, register_method
from owlore_bench.method import import_reference
from owlore_bench.methods.full_ft import FullFineTuning


class AdamMiniConfig(MethodConfig):
    betas: tuple[float, float] = Field((0.9, 0.999), description="(beta1, beta2), the package's defaults")
    eps: float = Field(1e-8, gt=0, description="epsilon, the package's default")


@register_method("adam_mini")
class AdamMini(FullFineTuning):
    """Adam-mini: every parameter trained; one second moment per head / neuron / tensor (~half AdamW's state)."""

    Config = AdamMiniConfig  # prepare (everything trainable) is full FT's
    reference_package = "adam-mini"

    def build_optimizer(self, model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
        adam_mini = import_reference("adam_mini", self.name, self.reference_package)
        config = model.config
        optimizer = adam_mini.Adam_mini(
            named_parameters=model.named_parameters(), lr=lr, betas=self.config.betas, eps=self.config.eps,
            weight_decay=weight_decay, dim=config.hidden_size, n_heads=config.num_attention_heads,
            n_kv_heads=getattr(config, "num_key_value_heads", None), verbose=False)
        optimizer.world_size = 1  # parameters are replicated, never sharded (module docstring)
        return optimizer
