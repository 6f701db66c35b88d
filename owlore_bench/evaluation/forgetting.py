"""Forgetting: mean per-token cross-entropy (nats) on held-out general text, trained model against base model.

The text (owlore_bench.datasets.general_text: the built-in slice, or a file) is tokenized once, without special
tokens, and its first MAX_TOKENS tokens are cut into consecutive windows of `window_tokens` tokens (the remainder
is dropped, so every chunk weighs the same). Each window is scored as its own sequence: the model predicts
tokens 2..W from the tokens before them in the window, so a chunk has W - 1 predicted tokens and its CE is their
mean. Base and trained are scored on the very same chunks; `delta_ce` = trained - base (positive = the fine-tune
forgot general text) and `ci95` is a paired BCa bootstrap interval over chunks (scipy.stats.bootstrap, 2000
resamples, seed 0).

`<run>/forgetting.json` = {text, sha256, tokens, chunks, window_tokens, base_ce, trained_ce, delta_ce, ci95}.
The base model's per-chunk CEs are computed once per experiment and cached in `<experiment>/forgetting_base/`
(keyed by model, dtype, text sha256 and window), so N methods do not load and score the base model N times.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from owlore_bench.datasets.general_text import GeneralText, load_general_text
from owlore_bench.errors import UserError
from owlore_bench.results import read_json, write_json_atomic

FORGETTING_FILE = "forgetting.json"
BASE_CACHE_DIR = "forgetting_base"
# Cost: SmolLM2-135M scores ~110 tokens per CPU-second on one core (6,144 tokens: 55 s CPU, measured), so a run
# scores its first 2,048 tokens (of the built-in's 6,144): 32 windows of 64 tokens, ~20 s of one core.
WINDOW_TOKENS = 64
MAX_TOKENS = 2048
BATCH_CHUNKS = 8  # chunks per forward pass: logits of 8 × 64 × 49,152 fp32 ≈ 100 MB on SmolLM2
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def token_windows(tokenizer: Any, text: str, window_tokens: int = WINDOW_TOKENS,
                  max_tokens: int = MAX_TOKENS) -> torch.Tensor:
    """[chunks, window_tokens] token ids of consecutive windows of `text`, at most `max_tokens` in all (the rest
    dropped); at least 2 chunks."""
    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    chunks = min(len(ids), max_tokens) // window_tokens
    if chunks < 2:
        raise UserError(f"eval.forgetting: the text has {len(ids)} tokens, fewer than 2 windows of {window_tokens}; "
                        f"give a longer text (a few thousand words), or 'builtin'")
    return torch.tensor(ids[: chunks * window_tokens], dtype=torch.long).view(chunks, window_tokens)


@torch.no_grad()
def chunk_cross_entropy(model: Any, windows: torch.Tensor, batch_chunks: int = BATCH_CHUNKS) -> np.ndarray:
    """Mean next-token cross-entropy (nats/token) of each window, float64 [chunks]. Train/eval mode is restored."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    losses = []
    try:
        for start in range(0, len(windows), batch_chunks):
            batch = windows[start: start + batch_chunks].to(device)
            logits = model(input_ids=batch).logits[:, :-1].float()
            per_token = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten(),
                                                          reduction="none")
            losses.append(per_token.view(len(batch), -1).mean(dim=1).double().cpu())
    finally:
        model.train(was_training)
    return torch.cat(losses).numpy()


def paired_interval(base: np.ndarray, trained: np.ndarray) -> list[float]:
    """95 % paired bootstrap interval (BCa, over chunks) of mean(trained - base); [d, d] when every chunk's
    difference is the same d (the base model against itself), where a bootstrap has nothing to resample."""
    from scipy.stats import bootstrap

    differences = trained - base
    if np.ptp(differences) == 0:
        return [float(differences[0])] * 2
    result = bootstrap((differences,), np.mean, n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=0.95,
                       method="BCa", rng=np.random.default_rng(BOOTSTRAP_SEED))
    return [float(result.confidence_interval.low), float(result.confidence_interval.high)]


def forgetting_record(text: GeneralText, windows: torch.Tensor, base: np.ndarray, trained: np.ndarray) -> dict:
    """The forgetting.json mapping of per-chunk base and trained CEs (nats/token) on `windows` of `text`."""
    base_ce, trained_ce = float(base.mean()), float(trained.mean())
    return {"text": text.name, "sha256": text.sha256, "tokens": int(windows.numel()), "chunks": len(windows),
            "window_tokens": int(windows.shape[1]), "base_ce": base_ce, "trained_ce": trained_ce,
            "delta_ce": trained_ce - base_ce, "ci95": paired_interval(base, trained)}


def cached_base_ce(cache_dir: Path, key_fields: dict[str, Any], compute: Callable[[], np.ndarray]) -> np.ndarray:
    """Per-chunk base CEs from `cache_dir`, computed (and written) once per distinct `key_fields`."""
    key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir / f"{key}.json"
    if path.is_file():
        cached = read_json(path)
        if cached.get("key") == key_fields:
            return np.asarray(cached["chunk_ce"], dtype=np.float64)
    values = compute()
    write_json_atomic(path, {"key": key_fields, "chunk_ce": [float(v) for v in values]})
    return values


def write_forgetting(folder: Path, model: Any, tokenizer: Any, source: str, model_name: str, cache_dir: Path,
                     load_base: Callable[[], Any] | None, window_tokens: int = WINDOW_TOKENS) -> dict[str, Any]:
    """Measure `model` against the base model on the text `source` and write `<folder>/forgetting.json`.

    `load_base` returns the base model (same dtype and device as `model`); None means `model` IS the base model,
    so its CEs fill the cache and the delta is 0. Returns the record written."""
    text = load_general_text(source)
    windows = token_windows(tokenizer, text.text, window_tokens)
    trained = chunk_cross_entropy(model, windows)
    key_fields = {"model": model_name, "dtype": str(next(model.parameters()).dtype), "sha256": text.sha256,
                  "window_tokens": window_tokens, "tokens": int(windows.numel())}
    if load_base is None:
        base = cached_base_ce(cache_dir, key_fields, lambda: trained)
    else:
        base = cached_base_ce(cache_dir, key_fields, lambda: chunk_cross_entropy(load_base(), windows))
    record = forgetting_record(text, windows, base, trained)
    write_json_atomic(Path(folder) / FORGETTING_FILE, record)
    return record
