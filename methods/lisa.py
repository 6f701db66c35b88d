"""LISA (layerwise importance sampling) and the layer-sampling machinery OwLore builds on.

Every `interval` (K) steps γ decoder layers are drawn (rule: `sampling`) and only they, plus everything outside
the decoder layers (embeddings, final norm, lm_head), are trained. ONE optimizer is built over all parameters
at the start; the active set is controlled by requires_grad, and on each switch the leaving layers' gradients
and optimizer state are freed (unless keep_state). With low_rank, the sampled layers' weight matrices (every 2-D
weight of a decoder layer, or `target_modules`: owlore_bench/train/galore_groups.py) get GaLore updates (that is
OwLore). Ablations are configs of this one class, not new classes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field

from owlore_bench import Method, MethodConfig, UserError, register_method
from owlore_bench.analysis.calibration import windows_for
from owlore_bench.analysis.outliers import cached_outlier_ratios, read_ratio_file, tokenizer_for
from owlore_bench.train.galore_groups import (
    ProjectionTargetsConfig,
    ProjType,
    galore_adamw,
    galore_param_groups,
    projected_info,
    projection_targets,
)
from owlore_bench.train.layers import decoder_layers
from owlore_bench.train.sampling import (
    OUTLIER_MODES,
    LayerSampler,
    inclusion_probabilities,
    layer_probabilities,
    set_layers_trainable,
    switch_active_layers,
)

SamplingMode = Literal["uniform", "outlier", "outlier_reverse", "increase", "decrease"]

# Each field's type, limits and description, written once: a method's config re-declares only its default
# (`gamma: Gamma = 5`); pydantic keeps the Annotated Field's limits and description.
Gamma = Annotated[int, Field(gt=0, description="γ: decoder layers trained at a time")]
Interval = Annotated[int, Field(gt=0, description="K: steps between draws of the active layers (draws at steps 0, K, "
                                                  "2K, ...)")]
Sampling = Annotated[SamplingMode, Field(description="layer probability rule: uniform, outlier (D_l / sum D), "
                                                     "outlier_reverse, increase (p ∝ l+1), decrease (p ∝ L-l)")]
LowRank = Annotated[bool, Field(description="GaLore updates on the sampled layers' weight matrices (False: plain "
                                            "AdamW)")]


class LayerSamplingConfig(ProjectionTargetsConfig):
    """Every layer-sampling field (LISA's defaults); `target_modules` (from the base) narrows low_rank's matrices."""

    gamma: Gamma = 2
    interval: Interval = 3
    sampling: Sampling = "uniform"
    low_rank: LowRank = False
    rank: int = Field(256, gt=0, description="GaLore rank (clamped per matrix to min(m, n), with a warning)")
    update_proj_gap: int = Field(100, gt=0, description="GaLore: optimizer steps of a matrix between SVD refreshes")
    scale: float = Field(1.0, gt=0, description="GaLore scale: projected weights train at lr * scale")
    proj_type: ProjType = Field("std", description="GaLore projection side")
    keep_state: bool = Field(False, description="keep the optimizer state of layers that leave the active set "
                                                "(LMFlow's behaviour; memory grows with every layer ever sampled)")
    outlier_threshold: float = Field(13.0, gt=0, description="M: a score counts as an outlier above M x the "
                                                             "layer's mean score")
    outlier_ratios_file: str | None = Field(None, description="precomputed outlier ratios, one number (percent) per "
                                                              "layer and line (a path, data:<rel>, or "
                                                              "https://...#sha256=<hex>); null = compute them from "
                                                              "the model with the calibration settings")
    calibration_file: str | None = Field(None, description="calibration text (.txt, or JSON records/strings); 'c4' "
                                                           "= OWL's recipe (C4 shard 0 from the hub, OWL's get_c4 "
                                                           "sampling); null = Python's reference docs "
                                                           "(pydoc_data), offline")
    calibration_samples: int = Field(32, gt=0, description="calibration sequences (official: 128 of C4)")
    calibration_length: int = Field(256, gt=0, description="tokens per calibration sequence (official: 2048)")
    seed: int | None = Field(None, description="seed of the layer sampler; null = the run's train.seed")


LisaConfig = LayerSamplingConfig


@register_method("lisa")
class LayerSampling(Method):
    """LISA: γ decoder layers (default 2, uniform) trained at a time, redrawn every K steps (default 3)."""

    Config = LisaConfig
    reference_package = "torch"  # plain AdamW; OwLore (low_rank) overrides it

    def __init__(self, config: MethodConfig | None = None, seed: int = 0):
        super().__init__(config, seed)
        self.layers: torch.nn.ModuleList | None = None
        self.sampler: LayerSampler | None = None
        self.probabilities: np.ndarray | None = None
        self.outlier_info: dict[str, Any] = {}
        self.projected: dict[str, Any] = {}  # low_rank: the matrices GaLore projects (summary.json)

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        self.layers = decoder_layers(model)
        count = len(self.layers)
        if self.config.gamma > count:
            raise UserError(f"{self.name}.gamma: {self.config.gamma} is more than the model's {count} decoder layers")
        self._check_targets(model)  # before the outlier ratios: a wrong list costs no calibration pass
        ratios = self._outlier_ratios(model, count) if self.config.sampling in OUTLIER_MODES else None
        self.probabilities = layer_probabilities(self.config.sampling, count, ratios)
        possible = int((self.probabilities > 0).sum())
        if self.config.gamma > possible:
            raise UserError(f"{self.name}.gamma: {self.config.gamma} is more than the {possible} layers with non-zero "
                            f"probability under sampling '{self.config.sampling}'; lower gamma or change sampling")
        model.requires_grad_(True)  # always-trained parts stay trainable; layers wait for the first draw
        set_layers_trainable(self.layers, [])
        return model

    def _check_targets(self, model: torch.nn.Module) -> None:
        """Refuse target_modules without low_rank, or matching no matrix; record the matrices GaLore projects."""
        field = f"{self.name}.target_modules"
        if not self.config.low_rank:
            if self.config.target_modules is not None:
                raise UserError(f"{field}: only used with low_rank: true (GaLore on the sampled layers); remove it")
            return
        self.projected = projected_info(projection_targets(model, self.config.target_modules, field))

    def _outlier_ratios(self, model: torch.nn.Module, count: int) -> np.ndarray:
        c = self.config
        if c.outlier_ratios_file:
            self.outlier_info = {"source": c.outlier_ratios_file}
            ratios = read_ratio_file(c.outlier_ratios_file, count, field=f"{self.name}.outlier_ratios_file")
        else:
            windows, source = windows_for(c.calibration_file, tokenizer_for(model), c.calibration_samples,
                                          c.calibration_length)
            ratios, info = cached_outlier_ratios(model, windows, c.outlier_threshold)
            self.outlier_info = {"source": source, **info}
        self.outlier_info["outlier_ratio_percent"] = [float(r) for r in ratios]
        return ratios

    def build_optimizer(self, model, lr, weight_decay):
        c = self.config
        groups = galore_param_groups(model, rank=c.rank, update_proj_gap=c.update_proj_gap, scale=c.scale,
                                     proj_type=c.proj_type, low_rank=c.low_rank, include_frozen=True,
                                     target_modules=c.target_modules)
        if c.low_rank:
            return galore_adamw(groups, lr=lr, weight_decay=weight_decay)
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)

    def _ensure_sampler(self) -> LayerSampler:
        if self.sampler is None:
            if self.layers is None:
                raise RuntimeError(f"{self.name}: prepare(model) must run before training")
            seed = self.config.seed if self.config.seed is not None else self.seed  # null: the run's train.seed
            self.sampler = LayerSampler(self.probabilities, self.config.gamma, self.config.interval, seed)
        return self.sampler

    def on_step_start(self, step, model, optimizer):
        sampler = self._ensure_sampler()
        if sampler.is_switch_step(step):
            previous = sampler.active
            switch_active_layers(self.layers, previous, sampler.draw(), optimizer, self.config.keep_state)
        return {"active_layers": list(sampler.active)}

    def state_dict(self) -> dict[str, Any]:
        return {"sampler": self.sampler.state_dict() if self.sampler is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("sampler") is None:
            return
        sampler = self._ensure_sampler()
        sampler.load_state_dict(state["sampler"])
        set_layers_trainable(self.layers, sampler.active or [])

    def run_info(self) -> dict[str, Any]:
        if self.probabilities is None:
            return {}
        small = len(self.probabilities) <= 40 and self.config.gamma <= 6  # exact DP cost ~ C(L, γ-1)·L
        inclusion = inclusion_probabilities(self.probabilities, self.config.gamma) if small else None
        return {"layer_probabilities": [float(p) for p in self.probabilities],
                "inclusion_probabilities": None if inclusion is None else [float(p) for p in inclusion],
                **({"outliers": self.outlier_info} if self.outlier_info else {}), **self.projected}
