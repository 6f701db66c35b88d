"""Fira (fira 1.0.2): GaLore-style low-rank Adam states on every decoder-layer weight matrix, plus the part of the
gradient outside the projection, scaled by the low-rank update's norm ratio: a full-rank update under low-rank
state.

Param groups: GaLore's (owlore_bench/train/galore_groups.py) with Fira's `alpha` in place of GaLore's `scale`;
embeddings, norms and lm_head are plain Adam in the same optimizer. Defaults from the fira README's example
(`divide_params(model, target_modules_list=["attn", "mlp"], rank=8)`) and divide_params' own defaults:
rank 8, update_proj_gap 200, alpha 1.0, proj_type std; FiraAdamW's betas (0.9, 0.999) and eps 1e-6. The
README's target list is `target_modules: [attn, mlp]`; the default here (every decoder-layer matrix) is the same
matrices on Llama-shaped models and also reaches GPT-NeoX's `attention.*` or OPT's `fc1`/`fc2`.
"""

from __future__ import annotations

from pydantic import Field

from owlore_bench import register_method
from owlore_bench.method import import_reference
from owlore_bench.methods.full_ft import FullFineTuning
from owlore_bench.train.galore_groups import (
    ProjectionTargetsConfig,
    ProjType,
    RecordsProjectedMatrices,
    galore_param_groups,
)


class FiraConfig(ProjectionTargetsConfig):
    rank: int = Field(8, gt=0, description="projection rank r (clamped per matrix to min(m, n), with a warning)")
    update_proj_gap: int = Field(200, gt=0, description="optimizer steps between SVD refreshes of the projector")
    alpha: float = Field(1.0, gt=0, description="scale of the projected-back low-rank update (GaLore's `scale`)")
    proj_type: ProjType = Field(
        "std", description="projection side; std: right if rows >= cols, else left")


@register_method("fira")
class Fira(RecordsProjectedMatrices, FullFineTuning):
    """Fira (fira): GaLore's rank-8 Adam states plus the scaled residual gradient, a full-rank update."""

    Config = FiraConfig
    reference_package = "fira"

    def build_optimizer(self, model, lr, weight_decay):
        fira = import_reference("fira", self.name, "fira")
        c = self.config
        groups = galore_param_groups(model, rank=c.rank, update_proj_gap=c.update_proj_gap, scale=c.alpha,
                                     proj_type=c.proj_type, target_modules=c.target_modules)
        # Fira's projector reads `alpha` where GaLore's reads `scale`: the same number under Fira's name.
        groups = [{**{k: v for k, v in g.items() if k != "scale"}, "alpha": g["scale"]} if "rank" in g else g
                  for g in groups]
        return fira.FiraAdamW(groups, lr=lr, weight_decay=weight_decay, no_deprecation_warning=True)
