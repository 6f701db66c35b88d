"""Find the decoder-layer list of an HF causal LM (Llama, Mistral, Qwen, Gemma, Phi-3, OLMo2, StableLM, Granite,
GPT-NeoX, GPT-2, OPT, Falcon), peft wrappers included, and name what is inside it.

Layer-sampling methods, BAdam's blocks, the GaLore family's targets and the outlier analysis all need "the list
of transformer blocks"; everything outside that list (token embeddings, final norm, lm_head) is what
layer-sampling methods always train.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import torch

from owlore_bench.errors import UserError

# Attribute paths tried in order, relative to the unwrapped model. Llama/Mistral/Qwen2/Gemma: model.layers;
# GPT-2/GPT-J: transformer.h; GPT-NeoX/Pythia: gpt_neox.layers; OPT: model.decoder.layers; Falcon: transformer.h.
LAYER_PATHS = ("model.layers", "transformer.h", "gpt_neox.layers", "model.decoder.layers", "layers", "h")


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The HF model inside a peft PeftModel wrapper (the model itself if not wrapped)."""
    get_base_model = getattr(model, "get_base_model", None)
    return get_base_model() if callable(get_base_model) else model


def _lookup(root: torch.nn.Module, path: str) -> torch.nn.ModuleList | None:
    node = root
    for part in path.split("."):
        node = getattr(node, part, None)
        if node is None:
            return None
    return node if isinstance(node, torch.nn.ModuleList) and len(node) > 0 else None


def decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The model's decoder-layer ModuleList; a UserError naming the attribute paths tried if there is none."""
    root = unwrap(model)
    for path in LAYER_PATHS:
        layers = _lookup(root, path)
        if layers is not None:
            return layers
    raise UserError(f"cannot find the decoder layers of {type(root).__name__}: looked for a non-empty ModuleList at "
                    f"{', '.join(LAYER_PATHS)}; this architecture is not supported by layer sampling / "
                    f"outlier analysis")


def layer_parameter_ids(layers: torch.nn.ModuleList) -> list[set[int]]:
    """For each layer, the ids of its parameters (to tell decoder-layer parameters from always-trained ones)."""
    return [{id(p) for p in layer.parameters()} for layer in layers]


def always_trained_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Parameters outside every decoder layer: embeddings, final norm, lm_head (a tied lm_head counts once)."""
    inside = set().union(*layer_parameter_ids(decoder_layers(model)))
    return [p for p in model.parameters() if id(p) not in inside]


def layer_names(model: torch.nn.Module) -> list[str]:
    """The full module name of each decoder layer, in order (e.g. `model.layers.0`, `transformer.h.0`), as
    `model.named_modules()` / `model.named_parameters()` spell them (a peft wrapper's prefix included)."""
    names = {id(module): name for name, module in model.named_modules()}
    return [names[id(layer)] for layer in decoder_layers(model)]


def decoder_layer_parameters(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """(full name, parameter) of every parameter inside the decoder layers, in `model.named_parameters()` order."""
    inside = set().union(*layer_parameter_ids(decoder_layers(model)))
    return [(name, param) for name, param in model.named_parameters() if id(param) in inside]


def name_patterns(names: Iterable[str]) -> dict[str, int]:
    """{pattern: count} of parameter or module names with each layer index replaced by `*`
    (`model.layers.*.self_attn.q_proj.weight: 30`): which matrices a run touched, in a few lines."""
    return dict(Counter(re.sub(r"\.\d+(?=\.|$)", ".*", name) for name in names))
