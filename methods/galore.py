"""GaLore (galore-torch): full-parameter training with low-rank projected Adam states on the decoder layers' weight
matrices (owlore_bench/train/galore_groups.py: every 2-D weight of every decoder layer, or `target_modules`)."""

from __future__ import annotations

from pydantic import Field

from owlore_bench import register_method
from owlore_bench.methods.full_ft import FullFineTuning
from owlore_bench.train.galore_groups import (
    ProjectionTargetsConfig,
    ProjType,
    RecordsProjectedMatrices,
    galore_adamw,
    galore_param_groups,
)


class GaLoreConfig(ProjectionTargetsConfig):
    rank: int = Field(128, gt=0, description="projection rank r (clamped per matrix to min(m, n), with a warning)")
    update_proj_gap: int = Field(200, gt=0, description="optimizer steps between SVD refreshes of the projector")
    scale: float = Field(0.25, gt=0, description="GaLore scale: projected weights train at lr * scale")
    proj_type: ProjType = Field(
        "std", description="projection side; std: right if rows >= cols (states m x r), else left (r x n)")


@register_method("galore")
class GaLore(RecordsProjectedMatrices, FullFineTuning):
    """GaLore: GaLoreAdamW with rank-r gradient projection on every decoder-layer matrix; the rest plain Adam."""

    reference_package = "galore-torch"
    Config = GaLoreConfig  # every parameter trains, as in full FT (prepare is inherited); only the optimizer differs

    def build_optimizer(self, model, lr, weight_decay):
        c = self.config
        groups = galore_param_groups(model, rank=c.rank, update_proj_gap=c.update_proj_gap, scale=c.scale,
                                     proj_type=c.proj_type, target_modules=c.target_modules)
        return galore_adamw(groups, lr=lr, weight_decay=weight_decay)
