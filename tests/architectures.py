"""Fourteen causal-LM architectures as tiny random models, built offline from transformers' config classes.

4 decoder layers, width 64, 4 attention heads (2 key/value heads where the family has grouped-query attention),
MLP width 128 and the 259-token byte tokenizer of the tiny test model (owlore_bench.models.byte_tokenizer). Each
keeps what makes its family different for the methods: fused QKV (Phi-3, GPT-NeoX, Falcon, GPT-2), GPT-2's
Conv1D, OPT's fc1/fc2 and final_layer_norm, head_dim != hidden / heads (Qwen3, Gemma 2, Gemma 3: 32 vs 16),
tied embeddings (Gemma, GPT-2) and the layer paths model.layers / gpt_neox.layers / model.decoder.layers /
transformer.h.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from owlore_bench.models import byte_tokenizer
from owlore_bench.registry import build_method

TOKENS = dict(vocab_size=259, bos_token_id=256, eos_token_id=257, pad_token_id=258)
LLAMA_LIKE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=512)

# name → (transformers config class, its settings)
ARCHITECTURES: dict[str, tuple[str, dict[str, Any]]] = {
    "llama": ("LlamaConfig", LLAMA_LIKE),
    "mistral": ("MistralConfig", LLAMA_LIKE),
    "qwen2": ("Qwen2Config", LLAMA_LIKE),
    "qwen3": ("Qwen3Config", {**LLAMA_LIKE, "head_dim": 32}),
    "gemma2": ("Gemma2Config", {**LLAMA_LIKE, "head_dim": 32}),
    "gemma3": ("Gemma3TextConfig", {**LLAMA_LIKE, "num_key_value_heads": 1, "head_dim": 32}),
    "phi3": ("Phi3Config", LLAMA_LIKE),
    "olmo2": ("Olmo2Config", LLAMA_LIKE),
    "gpt_neox": ("GPTNeoXConfig", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                                        num_attention_heads=4, max_position_embeddings=512)),
    "gpt2": ("GPT2Config", dict(n_embd=64, n_inner=128, n_layer=4, n_head=4, n_positions=512)),
    "opt": ("OPTConfig", dict(hidden_size=64, ffn_dim=128, num_hidden_layers=4, num_attention_heads=4,
                              word_embed_proj_dim=64, max_position_embeddings=512)),
    "falcon": ("FalconConfig", dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4)),
    "stablelm": ("StableLmConfig", LLAMA_LIKE),
    "granite": ("GraniteConfig", LLAMA_LIKE),
}
LLAMA_SHAPED = ("llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "olmo2", "stablelm", "granite")


def tiny_config(name: str):
    import transformers

    class_name, settings = ARCHITECTURES[name]
    return getattr(transformers, class_name)(**settings, **TOKENS)


def tiny_model(name: str, seed: int = 0) -> torch.nn.Module:
    """A seeded random model of architecture `name` (fp32, on the CPU)."""
    from transformers import AutoModelForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AutoModelForCausalLM.from_config(tiny_config(name))


def saved_tiny_model(name: str, folder: Path) -> Path:
    """`folder` holding a tiny model of architecture `name` and the byte tokenizer, as a user's checkpoint."""
    if not (folder / "config.json").is_file():
        tiny_model(name).save_pretrained(folder)
        byte_tokenizer().save_pretrained(folder)
    return folder


def one_step(method_name: str, architecture: str, **config):
    """(model, method, optimizer) after one optimizer step of a fresh tiny `architecture` model trained by
    `method_name` with `config`: prepare, build_optimizer, on_step_start(0), forward, backward, step."""
    model = tiny_model(architecture)
    method = build_method(method_name, config)
    model = method.prepare(model)
    optimizer = method.build_optimizer(model, lr=1e-3, weight_decay=0.0)
    method.on_step_start(0, model, optimizer)
    ids = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(0))
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    return model, method, optimizer
