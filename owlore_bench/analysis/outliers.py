"""Layerwise outlier ratios D_l (OWL's metric, as OwLore uses it), calibration streaming and a result cache.

For each Linear of decoder layer l, s_j = mean over calibration sequences of Σ_tokens x_j² (x = the module's
input, column j). Score A = |W| ⊙ sqrt(s) (Wanda's score, broadcast over rows). Concatenating A over the
layer's Linears, D_l = 100 · #(A > M · mean(A)) / numel  (percent; official M = 13).

Memory-bounded: one no-grad forward per calibration batch with hooks that only add into per-column sums
(in_features floats per Linear); no hidden states are kept, and the forward stops after the last decoder layer.
Calibration (official: 128 × 2048 tokens of C4, unreachable here) = `n` windows of `length` tokens at seeded
random offsets of a text: a file (.txt, or a JSON array of instruction records / strings) or, by default, the
English text of Python's own reference documentation (`pydoc_data.topics`, shipped with every CPython).
Results are cached under cache_dir()/outliers/ by (model fingerprint, calibration tokens hash, M, n, length).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from owlore_bench.downloads import cache_dir
from owlore_bench.errors import UserError
from owlore_bench.results import write_json_atomic
from owlore_bench.train.layers import decoder_layers, unwrap

DEFAULT_THRESHOLD = 13.0
MAX_CALIBRATION_CHARS = 4_000_000


def scored_modules(layer: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """The layer's Linear modules (and GPT-2 Conv1D, whose weight is stored transposed), by name."""
    from transformers.pytorch_utils import Conv1D

    return {name: module for name, module in layer.named_modules() if isinstance(module, (torch.nn.Linear, Conv1D))}


def _weight_out_by_in(module: torch.nn.Module) -> torch.Tensor:
    weight = module.weight.detach().float()
    return weight if isinstance(module, torch.nn.Linear) else weight.t()  # Conv1D stores (in, out)


def layer_outlier_ratio(weights: Sequence[torch.Tensor], column_sq_means: Sequence[torch.Tensor],
                        threshold: float = DEFAULT_THRESHOLD) -> float:
    """D_l in percent from the layer's weights (out × in) and each one's s_j (length in)."""
    scores = torch.cat([(w.abs().float() * s.float().sqrt()[None, :]).flatten()
                        for w, s in zip(weights, column_sq_means)])
    return float(100.0 * (scores > threshold * scores.mean()).sum() / scores.numel())


class _StopForward(Exception):
    """Raised by a hook after the last decoder layer: the lm_head's logits are not needed."""


def column_sq_means(model: torch.nn.Module, windows: torch.Tensor,
                    batch_size: int = 4) -> list[dict[str, torch.Tensor]]:
    """Per decoder layer, per scored module: s_j = mean over sequences of Σ_tokens x_j² (fp32, on CPU)."""
    layers = decoder_layers(model)
    sums: list[dict[str, torch.Tensor]] = [{} for _ in layers]
    hooks = []
    for index, layer in enumerate(layers):
        for name, module in scored_modules(layer).items():
            def accumulate(module, inputs, index=index, name=name):
                x = inputs[0].detach().float()
                total = x.reshape(-1, x.shape[-1]).pow(2).sum(dim=0).cpu()
                sums[index][name] = sums[index].get(name, 0) + total
            hooks.append(module.register_forward_pre_hook(accumulate))
    hooks.append(layers[-1].register_forward_hook(lambda *args: (_ for _ in ()).throw(_StopForward())))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(windows), batch_size):
                try:
                    model(input_ids=windows[start:start + batch_size].to(device), use_cache=False)
                except _StopForward:
                    pass
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return [{name: total / len(windows) for name, total in layer_sums.items()} for layer_sums in sums]


def outlier_ratios(model: torch.nn.Module, windows: torch.Tensor, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """D_l (percent) for every decoder layer of `model` from calibration token windows (n × length)."""
    means = column_sq_means(model, windows)
    ratios = []
    for layer, layer_means in zip(decoder_layers(model), means):
        modules = scored_modules(layer)
        ratios.append(layer_outlier_ratio([_weight_out_by_in(modules[name]) for name in layer_means],
                                          list(layer_means.values()), threshold))
    return np.asarray(ratios)


def calibration_text(source: str | Path | None) -> str:
    """Text of a calibration source: None = Python's reference docs; .json = records/strings; else a text file."""
    if source is None:
        import pydoc_data.topics

        return "\n\n".join(pydoc_data.topics.topics[key] for key in sorted(pydoc_data.topics.topics))
    path = Path(source)
    if not path.is_file():
        raise UserError(f"calibration file not found: {path}")
    text = path.read_text(encoding="utf-8", errors="replace")[:MAX_CALIBRATION_CHARS]
    if path.suffix != ".json":
        return text
    try:
        items = json.loads(text)
    except ValueError:
        raise UserError(f"{path}: not valid JSON; give a JSON array of records or strings, or a .txt file") from None
    if not isinstance(items, list):
        raise UserError(f"{path}: expected a JSON array of {{instruction, input, output}} records or strings")
    pieces = [item if isinstance(item, str)
              else " ".join(str(item.get(k, "")) for k in ("instruction", "input", "output"))
              for item in items if isinstance(item, (str, dict))]
    return "\n\n".join(pieces)


def calibration_windows(text: str, tokenizer: Any, n: int, length: int, seed: int = 0) -> torch.Tensor:
    """`n` windows of `length` token ids at seeded random offsets of the tokenized text (n × length, long)."""
    if n <= 0 or length <= 0:
        raise UserError(f"calibration: n ({n}) and length ({length}) must be positive")
    ids = tokenizer(text[:MAX_CALIBRATION_CHARS], add_special_tokens=False)["input_ids"]
    if len(ids) < length:
        raise UserError(f"calibration text has {len(ids)} tokens, fewer than one window of {length}; "
                        f"give a longer file or a smaller length")
    starts = np.random.default_rng(seed).integers(0, len(ids) - length + 1, size=n)
    ids = torch.tensor(ids, dtype=torch.long)
    return torch.stack([ids[s:s + length] for s in starts])


def model_fingerprint(model: torch.nn.Module) -> str:
    """sha256 over the config, every parameter's name, shape, dtype and bytes (changes when any weight does)."""
    digest = hashlib.sha256()
    config = getattr(unwrap(model), "config", None)
    digest.update((config.to_json_string(use_diff=False) if config is not None else type(model).__name__).encode())
    for name, param in unwrap(model).named_parameters():
        digest.update(f"{name}{tuple(param.shape)}{param.dtype}".encode())
        digest.update(param.detach().reshape(-1).contiguous().view(torch.uint8).cpu().numpy().tobytes())
    return digest.hexdigest()


def cached_outlier_ratios(model: torch.nn.Module, windows: torch.Tensor, threshold: float = DEFAULT_THRESHOLD,
                          use_cache: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
    """outlier_ratios, cached per (model fingerprint, calibration hash, M, n, length). Returns (ratios, info)."""
    calibration_hash = hashlib.sha256(windows.numpy().tobytes()).hexdigest()
    key_fields = {"model": model_fingerprint(model), "calibration": calibration_hash, "threshold": float(threshold),
                  "n": int(windows.shape[0]), "length": int(windows.shape[1])}
    key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()[:32]
    path = cache_dir() / "outliers" / f"{key}.json"
    if use_cache and path.is_file():
        cached = json.loads(path.read_text())
        return np.asarray(cached["outlier_ratio_percent"]), {**cached["key"], "cache": str(path), "cached": True}
    ratios = outlier_ratios(model, windows, threshold)
    if use_cache:
        write_json_atomic(path, {"key": key_fields, "outlier_ratio_percent": ratios.tolist()})
    return ratios, {**key_fields, "cache": str(path), "cached": False}


def ratio_file_path(spec: str | Path, field: str) -> Path:
    """The local file a ratio-file spec names (see read_ratio_file)."""
    text = str(spec)
    if text.startswith(("https://", "http://")):
        from owlore_bench.downloads import pinned_url

        try:
            return pinned_url(text, field)
        except UserError:  # offline: the same bytes in the data root's reference/ folder serve as well
            local = _same_bytes_in_data_root(text.partition("#sha256=")[2])
            if local is None:
                raise
            return local
    if text.startswith("data:"):
        from owlore_bench.paths import data_root

        return data_root() / text.removeprefix("data:")
    return Path(spec)


def _same_bytes_in_data_root(sha256: str) -> Path | None:
    """A file of <data root>/reference/ whose sha256 is `sha256` (e.g. the official LLaMA2-7B ratios), or None."""
    from owlore_bench.downloads import sha256_of
    from owlore_bench.paths import data_root

    folder = data_root() / "reference"
    found = [path for path in sorted(folder.glob("*")) if path.is_file() and sha256_of(path) == sha256]
    return found[0] if sha256 and found else None


def read_ratio_file(path: str | Path, n_layers: int | None = None, field: str = "outlier_ratios_file") -> np.ndarray:
    """Outlier ratios (percent), one number per line (blank lines ignored); checked against the layer count.

    `path` is a file, `data:<relative path>` under the benchmark data root, or `https://...#sha256=<hex>` (fetched
    once into the cache and checked; offline, a file with those bytes in the data root's reference/ folder).
    `field` names the config field or flag in error messages.
    """
    path = ratio_file_path(path, field)
    if not path.is_file():
        raise UserError(f"{field}: {path} not found")
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    try:
        ratios = np.asarray([float(line) for line in lines])
    except ValueError:
        raise UserError(f"{field}: {path} must hold one number per line") from None
    if n_layers is not None and len(ratios) != n_layers:
        raise UserError(f"{field}: {path} has {len(ratios)} lines but the model has {n_layers} decoder "
                        f"layers; give one ratio per layer")
    if (ratios < 0).any() or not np.isfinite(ratios).all() or ratios.sum() <= 0:
        raise UserError(f"{field}: {path} has negative or non-finite values (or sums to 0); "
                        f"ratios are percentages >= 0")
    return ratios


def tokenizer_for(model: torch.nn.Module) -> Any:
    """The tokenizer of a model loaded from a folder or hub id; the offline byte tokenizer for tiny test models."""
    from owlore_bench.models import byte_tokenizer

    name = getattr(getattr(unwrap(model), "config", None), "_name_or_path", "") or ""
    if name:
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(name)
        except (OSError, ValueError):
            pass
    fallback = byte_tokenizer()
    if unwrap(model).get_input_embeddings().num_embeddings >= len(fallback):
        return fallback  # a randomly initialised test model (models.tiny_llama): its tokenizer is byte-level
    raise UserError(f"cannot load a tokenizer for the model (config._name_or_path={name!r}) to tokenize calibration "
                    f"text; give method.outlier_ratios_file instead")
