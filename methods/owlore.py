"""OwLore: outlier-weighted layer sampling (p_l = D_l / Σ D) with GaLore on the sampled layers.

Same machinery as LISA (methods/lisa.py) with OwLore's defaults: γ=5, K=50, outlier sampling, GaLore rank 256,
update_proj_gap 100, scale 1.0, std; embeddings, final norm and lm_head always trained with plain Adam in the
same optimizer. `owlore_fullrank` is the paper's "OwLore (full-rank)": outlier sampling with plain AdamW.
"""

from __future__ import annotations

from owlore_bench import register_method
from owlore_bench.methods.lisa import Gamma, Interval, LayerSampling, LayerSamplingConfig, LowRank, Sampling


class OwLoreConfig(LayerSamplingConfig):
    """OwLore's defaults (the official scripts): γ 5, K 50, outlier sampling, GaLore on the sampled layers."""

    gamma: Gamma = 5
    interval: Interval = 50
    sampling: Sampling = "outlier"
    low_rank: LowRank = True


class OwLoreFullRankConfig(OwLoreConfig):
    """The paper's "OwLore (full-rank)": OwLore's sampling with plain AdamW."""

    low_rank: LowRank = False


@register_method("owlore")
class OwLore(LayerSampling):
    """OwLore: γ=5 layers drawn every 50 steps with p ∝ outlier ratio D_l, GaLore (rank 256) on their matrices."""

    Config = OwLoreConfig
    reference_package = "galore-torch"


@register_method("owlore_fullrank")
class OwLoreFullRank(OwLore):
    """OwLore (full-rank): outlier-weighted layer sampling (γ=5, K=50) with plain AdamW, no GaLore."""

    Config = OwLoreFullRankConfig
    reference_package = "torch"
