"""Calibration windows for the outlier ratios, including OWL's own C4 recipe (what the paper's ratios came from).

`calibration_file: c4` reproduces luuyin/OWL lib/data.py `get_c4` (@ dddb7a4): the first C4 training shard,
`random.seed(seed)`, then for each of n windows: draw documents with `random.randint(0, len(docs) - 1)` until one
tokenizes (tokenizer defaults, so with BOS) to more than `length` tokens, and cut a window at
`random.randint(0, tokens - length - 1)`. The shard comes through the hub (`allenai/c4`), so this needs hub access
once; any other source keeps the suite's offline windows (outliers.calibration_windows).
"""

from __future__ import annotations

import gzip
import json
import random
from typing import Any

import torch

from owlore_bench.analysis.outliers import calibration_text, calibration_windows
from owlore_bench.errors import UserError

C4_SOURCE = "c4"
# The shard OWL's get_c4 loads: load_dataset('allenai/c4', data_files={'train': 'en/c4-train.00000-of-01024.json.gz'}).
MAX_DRAWS = 10_000
OWL_C4_SHARD = "hf://allenai/c4/en/c4-train.00000-of-01024.json.gz@main"


def windows_for(source: str | None, tokenizer: Any, n: int, length: int, seed: int = 0) -> tuple[torch.Tensor, str]:
    """(n × length token ids, a name for the source) for a calibration source: 'c4' = OWL's recipe, else the
    text windows of outliers.calibration_windows (None = Python's reference docs)."""
    if source == C4_SOURCE:
        from owlore_bench.datasets.hub import fetch_file

        path, facts = fetch_file(OWL_C4_SHARD)
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            documents = [json.loads(line)["text"] for line in lines if line.strip()]
        return owl_windows(documents, tokenizer, n, length, seed), f"{OWL_C4_SHARD} (sha256 {facts['sha256']})"
    return calibration_windows(calibration_text(source), tokenizer, n, length, seed), source or "builtin:pydoc_data"


def owl_windows(documents: list[str], tokenizer: Any, n: int, length: int, seed: int = 0) -> torch.Tensor:
    """OWL's get_c4 sampling (see the module docstring), as n × length token ids. Its global `random` state is
    used exactly as OWL uses it and restored afterwards, so a sweep's other draws do not change."""
    saved = random.getstate()
    random.seed(seed)
    try:
        windows = []
        for _ in range(n):
            for _attempt in range(MAX_DRAWS):  # OWL's `while True`, bounded so a short corpus cannot hang a run
                ids = tokenizer(documents[random.randint(0, len(documents) - 1)])["input_ids"]
                if len(ids) > length:
                    break
            else:
                raise UserError(f"calibration: {MAX_DRAWS} documents drawn, none longer than calibration_length "
                                f"{length} tokens; lower calibration_length")
            start = random.randint(0, len(ids) - length - 1)
            windows.append(torch.tensor(ids[start:start + length], dtype=torch.long))
        return torch.stack(windows)
    finally:
        random.setstate(saved)
