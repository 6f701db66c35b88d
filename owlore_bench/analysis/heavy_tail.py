"""Heavy-tailed self-regularisation: PL_Alpha_Hill per weight matrix / decoder layer, and Spearman's rho vs D_l.

ESD of W = the eigenvalues of WᵀW (= squared singular values of W). PL_Alpha_Hill is the Hill estimator of the
power-law tail exponent with x_min at the median non-zero eigenvalue (the "xmin_mid" rule of the AlphaPruning /
OwLore analysis code): alpha = 1 + k / (Σ_{i>=m} ln λ_i − k · ln λ_m), k = N − m, m = N // 2.
Lower alpha = heavier tail. Written with torch (weightwatcher is not a dependency and fits a different
estimator by default); a layer's alpha is the mean over its scored (Linear) matrices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from owlore_bench.analysis.outliers import _weight_out_by_in, scored_modules
from owlore_bench.train.layers import decoder_layers

EIGENVALUE_FLOOR = 1e-5  # eigenvalues below this count as zero (as in the reference analysis code)


def pl_alpha_hill(weight: torch.Tensor) -> float:
    """PL_Alpha_Hill of one matrix's ESD (dimensionless); nan when it has fewer than 4 non-zero eigenvalues."""
    eigenvalues = torch.linalg.svdvals(weight.detach().float()).pow(2).sort().values
    nonzero = eigenvalues[eigenvalues > EIGENVALUE_FLOOR].double()
    count = len(nonzero)
    if count < 4:
        return float("nan")
    middle = count // 2
    tail = count - middle
    logs = nonzero.log()
    return float(1.0 + tail / (logs[middle:].sum() - tail * logs[middle]))


def layer_alphas(model: torch.nn.Module) -> np.ndarray:
    """Mean PL_Alpha_Hill over each decoder layer's Linear matrices (one value per layer)."""
    alphas = []
    for layer in decoder_layers(model):
        values = [pl_alpha_hill(_weight_out_by_in(module)) for module in scored_modules(layer).values()]
        alphas.append(float(np.nanmean(values)) if values else float("nan"))
    return np.asarray(alphas)


def spearman_rho(outlier_ratios: Sequence[float], alphas: Sequence[float]) -> tuple[float, float]:
    """(Spearman's rho, two-sided p-value) between per-layer D_l and alpha_l. The paper expects rho < 0."""
    from scipy.stats import spearmanr

    result = spearmanr(np.asarray(outlier_ratios, dtype=float), np.asarray(alphas, dtype=float), nan_policy="omit")
    return float(result.statistic), float(result.pvalue)
