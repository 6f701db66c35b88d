"""The measured side of estimate vs measurement: the synthetic batches a measured run trains on (the estimator's
assumption about the data), the loop summary's peaks as a ledger, and the relative error between the two.
"""

from __future__ import annotations

from typing import Any

import torch


class SyntheticBatches:
    """Unpadded random token batches of exactly `seq_len` tokens, labels = inputs (the estimator's assumption).

    Batch k is a pure function of (seed, k), like TrainingData.batch, which the loop calls the same way.
    """

    def __init__(self, vocab_size: int, seq_len: int, seed: int = 0):
        self.vocab_size, self.seq_len, self.seed = vocab_size, seq_len, seed

    def batch(self, index: int, batch_size: int) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        input_ids = torch.randint(0, self.vocab_size, (batch_size, self.seq_len), generator=generator)
        return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": input_ids.clone()}


def measured_ledger(summary: dict[str, Any]) -> dict[str, int]:
    """The measured peaks of a loop summary under the estimator's category names (bytes)."""
    return {key[len("peak_mem_"):-len("_bytes")]: value for key, value in summary.items()
            if key.startswith("peak_mem_") and key.endswith("_bytes")}


def relative_error(estimate: int, measured: int) -> float | None:
    """(estimate − measured) / measured; None where nothing was measured (0 bytes)."""
    return (estimate - measured) / measured if measured else None
