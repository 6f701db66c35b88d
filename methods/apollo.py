"""APOLLO and APOLLO-Mini (apollo-torch 1.0.3): full-parameter training whose AdamW moments live in a random
rank-r projection of each decoder-layer matrix's gradient and only set a channel-wise (APOLLO) or tensor-wise
(Mini) scale of the raw gradient: SGD-like optimizer memory.

Param groups: GaLore's (owlore_bench/train/galore_groups.py), plus the keys APOLLOAdamW reads (`proj`,
`scale_type`); embeddings, norms and lm_head are plain Adam in the same optimizer. Defaults from the
apollo-torch README ("Hyperparameter choices" and its usage example): APOLLO rank 256, scale 1, channel;
APOLLO-Mini rank 1, scale 128, tensor; both random projection, update_proj_gap 200, proj_type std, the
Norm-Growth Limiter on, applied before the scale (scale_front false). The update is multiplied by sqrt(scale).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from owlore_bench import register_method
from owlore_bench.method import import_reference
from owlore_bench.methods.full_ft import FullFineTuning
from owlore_bench.train.galore_groups import (
    ProjectionTargetsConfig,
    RecordsProjectedMatrices,
    galore_param_groups,
    projected_groups,
)


class ApolloConfig(ProjectionTargetsConfig):
    rank: int = Field(256, gt=0, description="rank of the auxiliary projection (clamped per matrix to min(m, n))")
    scale: float = Field(1.0, gt=0, description="the scaled update is multiplied by sqrt(scale)")
    scale_type: Literal["channel", "tensor"] = Field("channel", description="one scaling factor per channel, or one "
                                                     "per matrix")
    proj: Literal["random", "svd"] = Field("random", description="projection: seeded Gaussian, or GaLore's SVD")
    update_proj_gap: int = Field(200, gt=0, description="optimizer steps between refreshes of the projection")
    proj_type: Literal["std", "reverse_std", "right", "left"] = Field(
        "std", description="projection side; std: right if rows >= cols, else left")
    scale_front: bool = Field(False, description="apply sqrt(scale) before the Norm-Growth Limiter, not after")
    norm_growth_limiter: bool = Field(True, description="Fira's limiter: the update norm grows ≤ 1.01× per step")


class ApolloMiniConfig(ApolloConfig):
    rank: int = Field(1, gt=0, description="rank of the auxiliary projection (APOLLO-Mini: 1)")
    scale: float = Field(128.0, gt=0, description="the scaled update is multiplied by sqrt(scale) (Mini: 128)")
    scale_type: Literal["channel", "tensor"] = Field("tensor", description="one scaling factor per channel, or one "
                                                     "per matrix (Mini: per matrix)")


def seeds_outside_fake_mode(random_projector) -> None:
    """Make apollo-torch's `next_seed` (an integer drawn from a seeded generator with .tolist()) run with any
    FakeTensorMode switched off, so the memory estimator can step APOLLO on fake tensors: a fake tensor has no
    values to list. With no fake mode active (training) it is the package's function unchanged. Idempotent."""
    from torch._subclasses.fake_tensor import unset_fake_temporarily

    original = random_projector.next_seed
    if getattr(original, "outside_fake_mode", False):
        return

    def next_seed(seed: int, adv: int = random_projector.ADV_DEFAULT) -> int:
        with unset_fake_temporarily():
            return original(seed, adv)

    next_seed.outside_fake_mode = True
    random_projector.next_seed = next_seed


@register_method("apollo")
class Apollo(RecordsProjectedMatrices, FullFineTuning):
    """APOLLO (apollo-torch): AdamW-like update with channel-wise scales from rank-256 random projections."""

    Config = ApolloConfig
    reference_package = "apollo-torch"
    no_fsdp = ("apollo-torch draws its random projection as a plain tensor, which cannot multiply a gradient "
               "sharded as a DTensor")

    def build_optimizer(self, model, lr, weight_decay):
        apollo_torch = import_reference("apollo_torch", self.name, "apollo-torch")
        seeds_outside_fake_mode(apollo_torch.random_projector)
        c = self.config
        groups = galore_param_groups(model, rank=c.rank, update_proj_gap=c.update_proj_gap, scale=c.scale,
                                     proj_type=c.proj_type, target_modules=c.target_modules)
        groups = projected_groups(groups, proj=c.proj, scale_type=c.scale_type)
        return apollo_torch.APOLLOAdamW(groups, lr=lr, weight_decay=weight_decay, scale_front=c.scale_front,
                                        disable_nl=not c.norm_growth_limiter)


@register_method("apollo_mini")
class ApolloMini(Apollo):
    """APOLLO-Mini (apollo-torch): one tensor-wise scale per matrix from a rank-1 random projection, scale 128."""

    Config = ApolloMiniConfig
