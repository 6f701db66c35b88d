"""Adam-mini (adam-mini 1.1.1, the authors' package): Adam with one second-moment value per parameter block.

Every parameter trains, as in full FT; only the optimizer differs. That leaves about half of AdamW's optimizer
state (the first moment stays full size). The package sorts parameters into blocks by substrings of their NAMES
(embed/lm_head/output: one value per row; q_proj/k_proj/query/key: one per head of dim*dim/heads elements;
v/o/mlp: one per row; biases: plain Adam; anything else, e.g. norms: one per tensor). Its default substrings
misfire beyond Llama: "final_layer" makes GPT-NeoX's and OPT's `final_layer_norm.weight` an output layer (a 1-D
tensor it cannot split by rows: a crash), and dim*dim/heads is not a head when head_dim != hidden/heads (Gemma).

So the blocks here come from the model (adam_mini_partition), and the package is given them as its name sets:
- one value per row (token or output neuron): every nn.Embedding weight, the output layer (get_output_embeddings),
  and every other 2-D weight of the decoder layers;
- one value per head: query and key weights (names as the package's: q_proj, k_proj, wq, wk, query, key) and
  fused ones (qkv_proj, Wqkv, query_key_value), in blocks of head_dim rows x hidden (head_dim from the config).
  A fused block is then one head's query, key OR value (GPT-NeoX interleaves them per head, Phi-3 and Falcon
  stack them; rows of one head stay together either way): the value gets one value per head, coarser than
  per neuron, which the package's own notes allow ("it is also okay ... a single lr for the whole v");
- plain Adam for biases, one value per tensor for the rest (norms).
Refused in one line where the package cannot be right: a head weight whose rows are not whole heads or whose
columns are not the hidden size, and GPT-2's Conv1D weights (stored in x out: a row is an input feature, so its
blocks would cut across neurons and heads).

Defaults: the package's own (betas (0.9, 0.999), eps 1e-8: its README says to use AdamW's values). One change
to the package's behaviour: it reads `torch.cuda.device_count()` as the number of ranks among which parameters
are SHARDED and all-gathers block sizes across them (for FSDP / ZeRO). The suite never shards parameters (its
data parallel replicates them and averages gradients before the step), so the optimizer's world size is pinned
to 1: every rank then computes the same update with no collective, on one process or on N.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from owlore_bench import MethodConfig, UserError, register_method
from owlore_bench.method import import_reference
from owlore_bench.methods.full_ft import FullFineTuning
from owlore_bench.train.layers import decoder_layer_parameters, name_patterns

HEAD_NAMES = ("q_proj", "k_proj", "wq", "wk", "query", "key")  # the package's wqk_names, matched to module names
FUSED_QKV = ("qkv", "query_key_value")  # qkv_proj (Phi-3), Wqkv (MPT), query_key_value (GPT-NeoX, Falcon)
KINDS = ("row", "head", "adam", "tensor")


class AdamMiniConfig(MethodConfig):
    betas: tuple[float, float] = Field((0.9, 0.999), description="(beta1, beta2), the package's defaults")
    eps: float = Field(1e-8, gt=0, description="epsilon, the package's default")


def head_dim_of(config: Any) -> int:
    """Rows of one attention head in a query/key weight: config.head_dim where set, else hidden / heads."""
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def _is_head_weight(module_name: str) -> bool:
    leaf = module_name.rsplit(".", 1)[-1].lower()
    return leaf in HEAD_NAMES or any(fused in leaf for fused in FUSED_QKV)


def adam_mini_partition(model: torch.nn.Module, field: str = "adam_mini") -> dict[str, str]:
    """parameter name → its Adam-mini block kind (row, head, adam, tensor; module docstring) for every trainable
    parameter; a UserError naming the parameter where the package's blocks would not be right."""
    from transformers.pytorch_utils import Conv1D

    hidden, head_dim = model.config.hidden_size, head_dim_of(model.config)
    per_row = {id(module.weight) for module in model.modules() if isinstance(module, torch.nn.Embedding)}
    output = model.get_output_embeddings()
    per_row |= {id(output.weight)} if output is not None else set()
    layer_matrices = {id(param) for _, param in decoder_layer_parameters(model) if param.ndim == 2}
    conv1d = {id(module.weight) for module in model.modules() if isinstance(module, Conv1D)}
    kinds: dict[str, str] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if "bias" in name.lower():  # the package's first rule, kept: plain Adam
            kinds[name] = "adam"
        elif id(param) in conv1d:
            raise UserError(f"{field}: {name} is a Conv1D weight (in x out, GPT-2 style), so Adam-mini's blocks of "
                            f"rows would be input features, not neurons or heads; not offered for "
                            f"{type(model).__name__}: use full_ft or a GaLore-family method")
        elif id(param) in per_row:
            kinds[name] = "row"
        elif id(param) in layer_matrices and _is_head_weight(name.rsplit(".", 1)[0]):
            if param.shape[1] != hidden or param.shape[0] % head_dim:
                raise UserError(f"{field}: {name} is {tuple(param.shape)}, not whole heads of {head_dim} rows x "
                                f"hidden {hidden}; Adam-mini's one value per head cannot be placed on it")
            kinds[name] = "head"
        else:
            kinds[name] = "row" if id(param) in layer_matrices else "tensor"
    return kinds


def _name_sets(kinds: dict[str, str]) -> dict[str, set[str]]:
    """kind → the package's lower-case names of that kind; refuses a name that is part of another name (the package
    matches substrings, so such a name would pull the other parameter into its block too)."""
    names = [name.lower() for name in kinds]
    for name in names:
        clash = next((other for other in names if other != name and name in other), None)
        if clash is not None:
            raise UserError(f"adam_mini: parameter name {name} is part of {clash}; Adam-mini's name matching cannot "
                            f"tell them apart")
    return {kind: {name.lower() for name, k in kinds.items() if k == kind} for kind in KINDS}


@register_method("adam_mini")
class AdamMini(FullFineTuning):
    """Adam-mini: every parameter trained; one second moment per head / neuron / tensor (~half AdamW's state)."""

    Config = AdamMiniConfig  # prepare (everything trainable) is full FT's, plus the partition check
    reference_package = "adam-mini"

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        model = super().prepare(model)
        self.kinds = adam_mini_partition(model, self.name or "adam_mini")  # refused here, before any training
        return model

    def build_optimizer(self, model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
        adam_mini = import_reference("adam_mini", self.name, self.reference_package)
        config = model.config
        optimizer = adam_mini.Adam_mini(
            named_parameters=model.named_parameters(), lr=lr, betas=self.config.betas, eps=self.config.eps,
            weight_decay=weight_decay, dim=config.hidden_size, n_heads=config.num_attention_heads, verbose=False)
        sets = _name_sets(adam_mini_partition(model, self.name or "adam_mini"))
        # The package's name sets, replaced by the model's exact names (module docstring); "row" uses embd_names,
        # whose rule is the same one-value-per-row as output, v, attn_proj and mlp.
        optimizer.embd_names, optimizer.wqk_names = sets["row"], sets["head"]
        optimizer.output_names, optimizer.wv_names, optimizer.attn_proj_names, optimizer.mlp_names = (
            set(), set(), set(), set())
        optimizer.head_numel = head_dim_of(config) * config.hidden_size  # the package's dim*dim/heads, corrected
        optimizer.world_size = 1  # parameters are replicated, never sharded (module docstring)
        return optimizer

    def run_info(self) -> dict[str, Any]:
        kinds = getattr(self, "kinds", {})
        return {"adam_mini_blocks": {kind: name_patterns(n for n, k in kinds.items() if k == kind)
                                     for kind in KINDS if kind in kinds.values()}}
