"""The OFFICIAL OwLore / LISA design, re-implemented for benchmarking only: not a method, not registered.

What the official code does (OwLore at e415973 on LMFlow; ../shared/docs/METHODS.md, "Official defects"):
- ONE optimizer, built once over every parameter before training: galore-torch's GaLoreAdamW for OwLore (one
  rank group holding the `.weight` of every attn/mlp nn.Linear of every decoder layer, one plain group with
  everything else), torch AdamW for LISA and for full fine-tuning.
- Every K steps (at steps 0, K, 2K, ...) all decoder layers are frozen and γ of them unfrozen, by requires_grad
  only (LMFlow's DynamicLayerActivationCallback). The γ layers are drawn with numpy
  `Generator.choice(L, γ, replace=False, p=p)`: p_l = D_l / ΣD (outlier ratios) for OwLore, uniform for LISA.
- The optimizer state of a layer that leaves the active set is NEVER freed: the state grows with every layer
  ever sampled (the defect, LMFlow #768; the suite frees it on each switch).
- The step: forward, loss.backward(), clip_grad_norm_(every parameter, 1.0), optimizer.step(),
  zero_grad(set_to_none=True).
- The data: text tokenized and packed back to back into rows of block_size tokens (LMFlow's group_texts): no
  padding, labels = inputs.

Written from that description, not from methods/lisa.py, so that one bug cannot hide on both sides of the
comparison (benchmarks/bench_vs_reference.py). Shared with the suite: the memory ledger and the phase timer (they
only observe) and the decoder-layer lookup. The GaLore targets are the official rule (official_targets), not the
suite's (every 2-D weight of the decoder layers): the two agree on Llama-shaped models.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from owlore_bench.errors import UserError
from owlore_bench.memory.ledger import MemoryLedger
from owlore_bench.train.layers import decoder_layers
from owlore_bench.train.phases import PhaseTimer

OFFICIAL_METHODS = ("full_ft", "lisa", "owlore")


@dataclass(frozen=True)
class OfficialSettings:
    """Hyperparameters of one official-style run (defaults: the official OwLore code's)."""

    gamma: int = 5  # γ: decoder layers trained at a time (lisa, owlore)
    interval: int = 50  # K: steps between draws (lisa, owlore)
    rank: int = 256  # GaLore rank (owlore)
    update_proj_gap: int = 100  # GaLore: optimizer steps of a matrix between SVD refreshes (owlore)
    scale: float = 1.0  # GaLore scale (owlore)
    proj_type: str = "std"  # GaLore projection side (owlore)
    lr: float = 3e-4  # constant learning rate
    grad_clip: float = 1.0  # max global gradient norm; 0 = no clipping
    seed: int = 0  # seed of the layer draws


def official_targets(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The `.weight` of every nn.Linear whose module name contains "attn" or "mlp" (the official OwLore code's
    galore target rule, from galore-torch's README)."""
    return [module.weight for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and any(key in name for key in ("attn", "mlp"))]


def official_galore_groups(model: torch.nn.Module, settings: OfficialSettings) -> list[dict[str, Any]]:
    """The official param groups: every attn/mlp Linear weight in one GaLore group, all other parameters plain.

    Frozen or not, every parameter is in: the optimizer is built once and never rebuilt. No rank clamping (the
    official code has none).
    """
    low_rank = official_targets(model)
    low_rank_ids = {id(p) for p in low_rank}
    plain = [p for p in model.parameters() if id(p) not in low_rank_ids]
    return [{"params": plain},
            {"params": low_rank, "rank": settings.rank, "update_proj_gap": settings.update_proj_gap,
             "scale": settings.scale, "proj_type": settings.proj_type}]


def build_official_optimizer(method: str, model: torch.nn.Module, settings: OfficialSettings) -> torch.optim.Optimizer:
    """GaLoreAdamW (betas 0.9/0.999, eps 1e-6) for owlore; torch AdamW (eps 1e-8) over everything otherwise."""
    if method == "owlore":
        from galore_torch import GaLoreAdamW

        return GaLoreAdamW(official_galore_groups(model, settings), lr=settings.lr, weight_decay=0.0,
                           no_deprecation_warning=True)
    return torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.0)


def official_probabilities(method: str, n_layers: int, outlier_ratios: Sequence[float] | None) -> np.ndarray:
    """Layer probabilities: D_l / ΣD for owlore (no temperature, no clipping), 1/L for lisa."""
    if method == "owlore":
        if outlier_ratios is None or len(outlier_ratios) != n_layers:
            raise ValueError(f"official owlore needs {n_layers} outlier ratios, one per decoder layer")
        ratios = np.asarray(outlier_ratios, dtype=float)
        return ratios / ratios.sum()
    return np.full(n_layers, 1.0 / n_layers)


class LayerActivation:
    """LMFlow's DynamicLayerActivationCallback: every `interval` steps freeze all decoder layers, then unfreeze
    `gamma` drawn without replacement with probabilities `p`. Touches requires_grad only, never the optimizer."""

    def __init__(self, layers: torch.nn.ModuleList, p: np.ndarray, gamma: int, interval: int, seed: int):
        if gamma > len(layers):
            raise ValueError(f"gamma {gamma} is more than the model's {len(layers)} decoder layers")
        self.layers, self.p, self.gamma, self.interval = layers, p, gamma, interval
        self.rng = np.random.default_rng(seed)
        self.active: list[int] = []
        self.ever_trained: set[int] = set()

    def on_step_begin(self, step: int) -> list[int]:
        """The active layers for `step` (a new draw at steps 0, K, 2K, ...)."""
        if step % self.interval == 0:
            for layer in self.layers:
                layer.requires_grad_(False)
            chosen = self.rng.choice(len(self.layers), self.gamma, replace=False, p=self.p)
            self.active = sorted(int(index) for index in chosen)
            for index in self.active:
                self.layers[index].requires_grad_(True)
            self.ever_trained.update(self.active)
        return self.active


class OfficialTrainer:
    """One official-style run: the model, ONE optimizer built once over all parameters, and (lisa, owlore) the
    layer activation callback. train_step is the official step."""

    def __init__(self, method: str, model: torch.nn.Module, settings: OfficialSettings,
                 outlier_ratios: Sequence[float] | None = None):
        if method not in OFFICIAL_METHODS:
            raise ValueError(f"unknown official method '{method}'; use one of {', '.join(OFFICIAL_METHODS)}")
        self.method, self.model, self.settings = method, model, settings
        model.requires_grad_(True)
        model.train()
        self.optimizer = build_official_optimizer(method, model, settings)
        self.activation = None
        if method != "full_ft":
            layers = decoder_layers(model)
            p = official_probabilities(method, len(layers), outlier_ratios)
            self.activation = LayerActivation(layers, p, settings.gamma, settings.interval, settings.seed)

    def on_step_begin(self, step: int) -> list[int] | None:
        """The layer switch (lisa, owlore); the active layers, or None for full fine-tuning."""
        return self.activation.on_step_begin(step) if self.activation is not None else None

    def train_step(self, batch: dict[str, torch.Tensor], ledger: MemoryLedger, phases: PhaseTimer) -> float:
        """Forward, backward, clip, optimizer step, zero_grad; the loss. `ledger` and `phases` only observe (either
        may be off)."""
        with phases.phase("forward"), ledger.forward():
            loss = self.model(**batch).loss
        with phases.phase("backward"):
            loss.backward()
        ledger.after_backward()
        with phases.phase("update"):
            if self.settings.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return loss.item()


def run_official(trainer: OfficialTrainer, data: Any, steps: int, batch_size: int, memory_profile: bool = True,
                 on_iteration: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Train `steps` steps on data.batch(step, batch_size); one row per step, shaped like the suite's metrics lines.

    step_s spans what the suite loop's step_s spans (batch → zero_grad; the layer switch and the ledger's
    end-of-step walk are outside); forward_s, backward_s and update_s split it as train.time_phases does in the
    suite loop; iter_s is the whole iteration, switch and bookkeeping included.
    `on_iteration(step)` runs first in every iteration (a profiler uses it to start after the warm-up).
    """
    ledger = MemoryLedger(trainer.model, trainer.optimizer, enabled=memory_profile)
    phases = PhaseTimer(next(trainer.model.parameters()).device, enabled=True)
    rows, starts = [], []
    for step in range(steps):
        if on_iteration is not None:
            on_iteration(step)
        starts.append(time.perf_counter())
        active = trainer.on_step_begin(step)
        started = time.perf_counter()
        ledger.begin_step()
        phases.begin_step()
        batch = data.batch(step, batch_size)
        loss = trainer.train_step(batch, ledger, phases)
        step_s = time.perf_counter() - started
        tokens = int(batch["attention_mask"].sum())
        rows.append({"step": step, "loss": loss, "tokens": tokens, "step_s": step_s, "tokens_per_s": tokens / step_s,
                     **phases.row(), **ledger.end_step(),
                     **({"active_layers": list(active)} if active is not None else {})})
    starts.append(time.perf_counter())
    for row, begin, end in zip(rows, starts, starts[1:]):
        row["iter_s"] = end - begin
    return rows


class PackedTextBlocks:
    """Unpadded rows of exactly `seq_len` tokens cut back to back from one tokenized text (LMFlow's group_texts
    packing); labels = inputs, attention mask all ones. Batch k holds blocks k·B ... k·B+B−1 (wrapping around):
    a pure function of (k, B), so every run sees the same tokens."""

    def __init__(self, token_ids: torch.Tensor, seq_len: int):
        count = len(token_ids) // seq_len
        if count < 1:
            raise UserError(f"the text has {len(token_ids)} tokens, fewer than one row of {seq_len}; give a longer "
                            f"--text-file or use --tokens random")
        self.blocks = token_ids[:count * seq_len].view(count, seq_len)

    def batch(self, index: int, batch_size: int) -> dict[str, torch.Tensor]:
        rows = (torch.arange(batch_size) + index * batch_size) % len(self.blocks)
        input_ids = self.blocks[rows]
        return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": input_ids.clone()}
