"""BAdam (badam 1.4, the authors' package): block coordinate descent, Adam on one block at a time.

Layer mode (default): badam.BlockOptimizer wraps an AdamW over every parameter; one block (one decoder layer;
the embedding and lm_head are blocks only if included) is trainable at a time, with fp32 master copies of its
weights and Adam state for it alone, and every K = switch_every optimizer steps it moves to the next block and
drops the old block's state. The package does the switching inside its step (`requires_grad` follows the active
block, which the loop's metrics record as `active_block`). As in the package, the first block gets K - 1 steps
(it switches when (global_step + 1) % K == 0), every later block K.
Ratio mode: badam.BlockOptimizerRatio trains a fraction `update_ratio` of every matrix at once (its gradients
are made sparse by hooks inside backward), the slice moving every K steps; sparse Adam, no weight decay.

The blocks come from the model's structure (badam_blocks: one per decoder layer of owlore_bench/train/layers.py,
then each input embedding if included, then everything else if lm_head is included), in the order the package's
own inference gives them on Llama; its name patterns (`layers.N.`, `embed`) find no layer of GPT-2 or Falcon
(`transformer.h.N`) and no embedding named `wte`. In ratio mode the embedding and output layer the package freezes
are the model's own (get_input_embeddings / get_output_embeddings), not the first names containing "embed" and
"lm_head" (GPT-2's embedding is `wte`; a tied output has no name of its own).

Where the memory lives, for the ledger: the package keeps the Adam state in its base optimizer and the fp32
master copies beside it (not in `optimizer.state`); _BlockOptimizer shows both there, changing nothing else.

Defaults from the package README's examples: switch_every 100 (K; its advice is min(max(n / (B D), 50), 100)),
switch_mode random, embedding and lm_head not trained; ratio mode update_ratio 0.1, mask_mode adjacent;
Adam betas (0.9, 0.999), eps 1e-8.
Not offered: train.update_in_backward (the step converts the whole active block's gradients to fp32 together and
counts steps to switch blocks: one parameter at a time would count one step per parameter); data parallel in
ratio mode (its gradients are sparse, the suite averages dense ones). Layer mode trains data parallel: the
gradients of the active block are averaged before BlockOptimizer's step, and every rank switches alike (the
same seed draws the same random block order).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch._subclasses.fake_tensor import unset_fake_temporarily

from owlore_bench import Method, MethodConfig, register_method
from owlore_bench.method import import_reference
from owlore_bench.train.layers import layer_names


class BAdamConfig(MethodConfig):
    mode: Literal["layer", "ratio"] = Field("layer", description="layer: one block of layers at a time "
                                                                 "(BlockOptimizer); ratio: a fraction of every "
                                                                 "matrix at a time (BlockOptimizerRatio)")
    switch_every: int = Field(100, gt=0, description="K: optimizer steps before the next block")
    switch_mode: Literal["random", "ascending", "descending", "fixed"] = Field(
        "random", description="layer mode: block order (random reshuffles every pass over the blocks)")
    include_embedding: bool = Field(False, description="train the embedding (a block of its own in layer mode)")
    include_lm_head: bool = Field(False, description="train lm_head and the other non-layer parameters (layer "
                                                     "mode: one more block)")
    update_ratio: float = Field(0.1, gt=0, le=1, description="ratio mode: fraction of each matrix trained at a time")
    mask_mode: Literal["adjacent", "scatter"] = Field("adjacent", description="ratio mode: the trained entries are "
                                                                              "adjacent, or scattered at random")
    seed: int | None = Field(None, description="seed of the random block order; null = the run's train.seed")
    betas: tuple[float, float] = Field((0.9, 0.999), description="Adam (beta1, beta2)")
    eps: float = Field(1e-8, gt=0, description="Adam epsilon")


def badam_blocks(model: torch.nn.Module, include_embedding: bool, include_lm_head: bool) -> list[list[str]]:
    """BAdam's blocks as the package takes them (lists of parameter-name prefixes; a parameter is in a block if
    one of them is part of its name), in parameter order: each decoder layer, each input embedding (an
    nn.Embedding outside the layers) if include_embedding, and one block of every other parameter if
    include_lm_head."""
    layers = [f"{name}." for name in layer_names(model)]
    embeddings = {f"{name}." for name, module in model.named_modules() if isinstance(module, torch.nn.Embedding)}
    blocks: list[list[str]] = []
    others: list[str] = []
    for name, _ in model.named_parameters():
        owner = next((prefix for prefix in layers if name.startswith(prefix)), None)
        if owner is None and include_embedding:
            owner = next((prefix for prefix in embeddings if name.startswith(prefix)), None)
        if owner is None:
            others.append(name)
        elif [owner] not in blocks:
            blocks.append([owner])
    return blocks + ([others] if include_lm_head and others else [])


def _ratio_optimizer_class(badam: Any) -> type:
    class _BlockOptimizerRatio(badam.BlockOptimizerRatio):
        """badam.BlockOptimizerRatio that freezes the model's own embedding and output weights (module docstring)."""

        def __init__(self, *args, embedding: torch.nn.Parameter, output: torch.nn.Parameter, **kwargs):
            self._embedding, self._output = embedding, output
            super().__init__(*args, **kwargs)

        embedding_layer = property(lambda self: self._embedding)
        lm_head_layer = property(lambda self: self._output)

    return _BlockOptimizerRatio


def _block_optimizer_class(badam: Any) -> type:
    class _BlockOptimizer(badam.BlockOptimizer):
        """badam.BlockOptimizer whose `state` shows the ledger where its memory is: the base optimizer's Adam
        state and the active block's fp32 master copies. Quiet: the package prints every switch at verbose 1.
        In random mode the first block order is drawn here, as the package draws it (one torch.randperm of the
        block count, its last entry first), but from a generator seeded with `seed` (the package uses the global
        one, whatever state it is in) and as real numbers: under the estimator's FakeTensorMode the package's
        own draw would be a fake tensor it cannot turn into a list. Later passes reshuffle as the package does."""

        def __init__(self, base_optimizer, named_parameters_list, seed: int, **options: Any):
            if options.get("switch_mode") == "random":
                count = len(options["block_prefix_list"])
                with unset_fake_temporarily():
                    self.block_order = torch.randperm(count, generator=torch.Generator().manual_seed(seed)).tolist()
                options["start_block"] = self.block_order.pop()
            super().__init__(base_optimizer, named_parameters_list, **options)

        @property
        def state(self) -> dict[str, Any]:
            base = getattr(self, "base_optimizer", None)
            return {"adam": base.state if base is not None else {},
                    "fp32_master_copies": dict(getattr(self, "param_idx2hp", {}))}

        @state.setter
        def state(self, value: Any) -> None:  # torch's Optimizer.__init__ sets an empty one; ours is derived
            pass

        def switch_trainable_params(self, verbose: int | None = None) -> None:
            super().switch_trainable_params(verbose=self.verbose)

    return _BlockOptimizer


@register_method("badam")
class BAdam(Method):
    """BAdam: block coordinate descent, Adam on one decoder layer at a time, the next every K steps (default 100)."""

    Config = BAdamConfig
    reference_package = "badam"
    no_update_in_backward = ("BlockOptimizer's step updates the active block's fp32 copies together and counts "
                             "steps to switch blocks")

    @property
    def no_data_parallel(self) -> str | None:
        if self.config.mode == "ratio":
            return "ratio mode makes the gradients sparse inside backward; the suite averages dense gradients"
        return None

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        model.requires_grad_(True)  # the block optimizer freezes all but its active block when it is built
        self.blocks = badam_blocks(model, self.config.include_embedding, self.config.include_lm_head)
        return model

    def run_info(self) -> dict[str, Any]:
        if self.config.mode == "ratio":
            return {}
        return {"blocks": [block if len(block) <= 3 else [*block[:2], f"... {len(block)} names"]
                           for block in getattr(self, "blocks", [])]}

    def build_optimizer(self, model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
        badam = import_reference("badam", self.name, self.reference_package)
        c = self.config
        named = list(model.named_parameters())
        if c.mode == "ratio":
            params = [param for _, param in named]
            embedding = model.get_input_embeddings().weight
            output = getattr(model.get_output_embeddings(), "weight", embedding)
            return _ratio_optimizer_class(badam)(
                param_groups=[{"params": params}], named_parameters_list=named, switch_every=c.switch_every,
                update_ratio=c.update_ratio, mask_mode=c.mask_mode, lr=lr, betas=c.betas, eps=c.eps, verbose=0,
                include_embedding=c.include_embedding, include_lm_head=c.include_lm_head, embedding=embedding,
                output=output)
        base = torch.optim.AdamW([param for _, param in named], lr=lr, weight_decay=weight_decay, betas=c.betas,
                                 eps=c.eps)
        self.optimizer = _block_optimizer_class(badam)(
            base, named, seed=c.seed if c.seed is not None else self.seed,  # null: the run's train.seed
            block_prefix_list=self.blocks, switch_block_every=c.switch_every, switch_mode=c.switch_mode, verbose=0,
            include_embedding=c.include_embedding, include_lm_head=c.include_lm_head)
        return self.optimizer

    def on_step_start(self, step, model, optimizer):
        prefixes = getattr(optimizer, "active_param_prefixs", None)  # layer mode: the block trained this step
        return {"active_block": list(prefixes)} if prefixes is not None else {}

    def state_dict(self) -> dict[str, Any]:
        """Layer mode: the active block, its fp32 master copies and the switch bookkeeping (the package's own
        state_dict holds only the base optimizer's Adam state)."""
        block = getattr(self, "optimizer", None)
        if block is None or not hasattr(block, "param_idx2hp"):
            return {}
        return {"active": list(block.active_param_prefixs), "next": block.current_block_idx,
                "global_step": block.global_step, "order": list(getattr(block, "block_order", [])),
                "master": [hp.detach().clone() for hp in block.param_idx2hp.values()]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Make the saved block active again before the loop loads the base optimizer's state into it."""
        block = getattr(self, "optimizer", None)
        if not state or block is None:
            return
        block.active_param_prefixs = state["active"]
        block._switch_trainable_params_single_gpu(verbose=0)  # requires_grad and fp32 copies of that block
        with torch.no_grad():
            for hp, saved in zip(block.param_idx2hp.values(), state["master"]):
                hp.copy_(saved)
        block.current_block_idx, block.global_step, block.block_order = state["next"], state["global_step"], \
            list(state["order"])
