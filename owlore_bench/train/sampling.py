"""Seeded layer sampling for LISA / OwLore, and the switch of the active layer set.

Probability rules over L decoder layers (OwLore's official ablation modes):
- uniform: p_l = 1/L                       - outlier: p_l = D_l / Σ D (D = outlier ratios, percent)
- outlier_reverse: p_l ∝ max(p) − p_l      - increase: p_l ∝ l+1          - decrease: p_l ∝ L−l
Every `interval` steps (at steps 0, K, 2K, ...) γ layers are drawn with
numpy `Generator.choice(L, γ, replace=False, p=p)` — a sequential draw without replacement, so the inclusion
probability of a layer is NOT γ·p_l (see inclusion_probabilities).

On a switch, layers that leave the active set lose requires_grad, their .grad AND their optimizer state (unless
keep_state, the LMFlow behaviour whose memory creeps up, LMFlow #768); entering layers start with no state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from owlore_bench.errors import UserError

SAMPLING_MODES = ("uniform", "outlier", "outlier_reverse", "increase", "decrease")
OUTLIER_MODES = ("outlier", "outlier_reverse")


def layer_probabilities(mode: str, n_layers: int, outlier_ratios: Sequence[float] | None = None) -> np.ndarray:
    """Sampling probability of each of `n_layers` layers under `mode` (sums to 1)."""
    if mode not in SAMPLING_MODES:
        raise UserError(f"sampling: unknown mode '{mode}'; use one of {', '.join(SAMPLING_MODES)}")
    if mode == "uniform":
        weights = np.ones(n_layers)
    elif mode == "increase":
        weights = np.arange(1, n_layers + 1, dtype=float)
    elif mode == "decrease":
        weights = np.arange(n_layers, 0, -1, dtype=float)
    else:
        ratios = np.asarray(outlier_ratios if outlier_ratios is not None else [], dtype=float)
        if len(ratios) != n_layers:
            raise UserError(f"sampling '{mode}' needs {n_layers} outlier ratios (one per layer), got {len(ratios)}")
        if (ratios < 0).any() or ratios.sum() <= 0:
            raise UserError("outlier ratios must be >= 0 with a positive sum (percent of outlier scores per layer)")
        weights = ratios / ratios.sum()
        if mode == "outlier_reverse":
            weights = weights.max() - weights
            if weights.sum() <= 0:  # all layers equal: the reverse rule is undefined, uniform is its limit
                weights = np.ones(n_layers)
    return weights / weights.sum()


def inclusion_probabilities(p: Sequence[float], gamma: int) -> np.ndarray:
    """Exact probability that each layer is among γ drawn sequentially without replacement with weights p.

    Dynamic programme over subsets (as bitmasks): P(S ∪ {j}) += P(S) · p_j / (1 − p(S)). Cost ~ C(L, γ−1)·L,
    fine for L ≤ 40, γ ≤ 6 (numpy-vectorised). Used by tests and the run summary.
    """
    p = np.asarray(p, dtype=float)
    n = len(p)
    masks, probs = np.array([0], dtype=np.int64), np.array([1.0])
    bits = np.int64(1) << np.arange(n, dtype=np.int64)
    for _ in range(gamma):
        chosen = (masks[:, None] & bits[None, :]) != 0  # (states, n)
        taken = (chosen * p[None, :]).sum(axis=1)
        step = np.where(chosen, 0.0, probs[:, None] * p[None, :] / np.maximum(1.0 - taken, 1e-300)[:, None])
        new_masks = (masks[:, None] | bits[None, :])[~chosen]
        masks, inverse = np.unique(new_masks, return_inverse=True)
        probs = np.bincount(inverse, weights=step[~chosen], minlength=len(masks))
    chosen = (masks[:, None] & bits[None, :]) != 0
    return (chosen * probs[:, None]).sum(axis=0)


class LayerSampler:
    """Draws the active layers every `interval` steps from a seeded numpy Generator (reproducible, resumable)."""

    def __init__(self, probabilities: Sequence[float], gamma: int, interval: int, seed: int):
        self.probabilities = np.asarray(probabilities, dtype=float)
        if gamma > len(self.probabilities):
            raise UserError(f"gamma: {gamma} is more than the model's {len(self.probabilities)} decoder layers")
        self.gamma, self.interval = gamma, interval
        self.rng = np.random.default_rng(seed)
        self.active: list[int] | None = None

    def is_switch_step(self, step: int) -> bool:
        return self.active is None or step % self.interval == 0

    def draw(self) -> list[int]:
        """A new active set (sorted layer indices)."""
        chosen = self.rng.choice(len(self.probabilities), self.gamma, replace=False, p=self.probabilities)
        self.active = sorted(int(index) for index in chosen)
        return self.active

    def state_dict(self) -> dict[str, Any]:
        return {"bit_generator": self.rng.bit_generator.state, "active": self.active}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["bit_generator"]
        self.active = list(state["active"]) if state["active"] is not None else None


def set_layers_trainable(layers: torch.nn.ModuleList, active: Sequence[int]) -> None:
    """requires_grad True on every parameter of the `active` layers, False on all other decoder layers."""
    active_set = set(active)
    for index, layer in enumerate(layers):
        layer.requires_grad_(index in active_set)


def switch_active_layers(layers: torch.nn.ModuleList, old: Sequence[int] | None, new: Sequence[int],
                         optimizer: torch.optim.Optimizer | None, keep_state: bool = False) -> int:
    """Make `new` the trainable layers. Leaving layers lose .grad and (unless keep_state) optimizer state.

    Returns the number of parameters whose optimizer state was dropped.
    """
    leaving = set(range(len(layers))) - set(new) if old is None else set(old) - set(new)
    dropped = 0
    for index in sorted(leaving):
        for param in layers[index].parameters():
            param.grad = None
            if optimizer is not None and not keep_state and optimizer.state.pop(param, None) is not None:
                dropped += 1
    set_layers_trainable(layers, new)
    return dropped
