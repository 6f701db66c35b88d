"""PL_Alpha_Hill (Hill estimator of the ESD tail) and Spearman's rho."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from owlore_bench.analysis.heavy_tail import layer_alphas, pl_alpha_hill, spearman_rho
from owlore_bench.models import tiny_llama
from owlore_bench.train.layers import decoder_layers


def matrix_with_eigenvalues(eigenvalues: np.ndarray) -> torch.Tensor:
    """A square matrix whose WᵀW has exactly these eigenvalues (random orthogonal bases)."""
    n = len(eigenvalues)
    generator = torch.Generator().manual_seed(0)
    left, _ = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
    right, _ = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
    return left @ torch.diag(torch.tensor(np.sqrt(eigenvalues))) @ right.T


def test_hill_estimate_on_known_eigenvalues():
    # λ = 1..8: N = 8, m = 4 (x_min = λ_5 = 5), k = 4; alpha = 1 + 4 / (ln 5 + ln 6 + ln 7 + ln 8 − 4 ln 5)
    expected = 1 + 4 / (np.log(6 / 5) + np.log(7 / 5) + np.log(8 / 5))
    assert pl_alpha_hill(matrix_with_eigenvalues(np.arange(1.0, 9.0))) == pytest.approx(expected, rel=1e-6)


def test_hill_recovers_a_pareto_tail_exponent():
    # Eigenvalues at exact Pareto quantiles with density exponent 3: the Hill estimate should be near 3.
    quantiles = (np.arange(400) + 0.5) / 400
    eigenvalues = (1 - quantiles) ** (-1 / (3 - 1))
    assert pl_alpha_hill(matrix_with_eigenvalues(eigenvalues)) == pytest.approx(3.0, abs=0.25)


def test_heavier_tailed_entries_give_lower_alpha():
    rng = np.random.default_rng(0)
    gaussian = torch.tensor(rng.standard_normal((200, 100)))
    heavy = torch.tensor(rng.standard_t(2, (200, 100)))
    assert pl_alpha_hill(heavy) < pl_alpha_hill(gaussian)


def test_spearman_sign_and_layer_alphas():
    assert spearman_rho([1, 2, 3, 4], [4, 3, 2, 1])[0] == pytest.approx(-1.0)
    model, _ = tiny_llama()
    alphas = layer_alphas(model)
    assert alphas.shape == (4,) and np.isfinite(alphas).all() and (alphas > 1).all()


def test_spearman_of_a_monotone_non_linear_pair_is_one():
    # y = exp(x) is strictly increasing but far from a line: rank correlation 1, Pearson's r clearly below 1.
    x = np.arange(1.0, 9.0)
    y = np.exp(x)
    assert np.corrcoef(x, y)[0, 1] < 0.9  # a linear correlation would not pass the assertions below
    rho, p_value = spearman_rho(x, y)
    assert rho == pytest.approx(1.0, abs=1e-12)
    assert p_value < 0.01
    assert spearman_rho(x, -y ** 3)[0] == pytest.approx(-1.0, abs=1e-12)


def test_a_layer_alpha_is_the_mean_of_its_matrices_alphas():
    model, _ = tiny_llama(seed=0)
    layers = decoder_layers(model)
    with torch.no_grad():  # one heavy-tailed matrix in layer 1: its mean, max and median then differ clearly
        heavy = torch.tensor(np.random.default_rng(0).standard_t(1.5, tuple(layers[1].mlp.up_proj.weight.shape)))
        layers[1].mlp.up_proj.weight.copy_(heavy)
    alphas = layer_alphas(model)
    for index, layer in enumerate(layers):
        linears = {name: m for name, m in layer.named_modules() if isinstance(m, torch.nn.Linear)}
        assert len(linears) == 7, sorted(linears)
        per_matrix = [pl_alpha_hill(m.weight) for m in linears.values()]
        assert alphas[index] == pytest.approx(float(np.mean(per_matrix)), rel=1e-9), (index, per_matrix)
    per_matrix = [pl_alpha_hill(m.weight) for m in layers[1].modules() if isinstance(m, torch.nn.Linear)]
    assert max(per_matrix) - np.mean(per_matrix) > 0.1 and abs(np.median(per_matrix) - np.mean(per_matrix)) > 0.05
