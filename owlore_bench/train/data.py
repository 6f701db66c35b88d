"""Tokenized examples -> training batches (TrainingData).

Records come from owlore_bench/datasets/records.py and are tokenized (or packed into blocks) by
owlore_bench/train/tokenize.py; this module only serves them: batch k is a pure function of (seed, k), so a
resumed run sees exactly the batches an uninterrupted run would have seen, and every epoch is a fresh permutation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from owlore_bench.config import DataConfig
from owlore_bench.datasets.records import read_records
from owlore_bench.errors import UserError
from owlore_bench.train.tokenize import IGNORE_INDEX, Example, tokenize_records


class TrainingData:
    """Tokenized examples, served as deterministic shuffled batches (a fresh permutation every epoch)."""

    def __init__(self, examples: list[Example], pad_token_id: int, seed: int = 0):
        if not examples:
            raise UserError("training data: no example keeps a response token after truncation; raise train.max_length")
        self.examples = examples
        self.pad_token_id = pad_token_id
        self.seed = seed
        # Rows served per epoch before the next permutation starts; None = every example. An epoch-based run sets
        # it to steps_per_epoch x global batch, so each epoch starts a fresh permutation on a step boundary.
        self.epoch_rows: int | None = None
        self._orders: dict[int, np.ndarray] = {}

    @classmethod
    def build(cls, records: list[dict[str, str]], tokenizer: Any, data: DataConfig, max_length: int, seed: int = 0,
              source: str = "the data") -> TrainingData:
        """A run's data: its records tokenized (or packed, with data.packing) by train/tokenize.py."""
        examples = tokenize_records(records, tokenizer, data, max_length, source)
        if data.packing:  # blocks carry labels on every token they hold: nothing to skip
            return cls(examples, tokenizer.pad_token_id, seed)
        return cls.from_examples(examples, tokenizer.pad_token_id, max_length, seed, source)

    @classmethod
    def from_records(cls, records: list[dict[str, str]], tokenizer: Any, max_length: int, template: str = "alpaca",
                     seed: int = 0, source: str = "the data") -> TrainingData:
        """Unpacked records in one template (a shortcut of build for tests and benchmarks)."""
        return cls.build(records, tokenizer, DataConfig(path=source, template=template), max_length, seed, source)

    @classmethod
    def from_examples(cls, examples: list[Example], pad_token_id: int, max_length: int, seed: int = 0,
                      source: str = "the data") -> TrainingData:
        # A prompt longer than max_length leaves no response token to learn from: skip it (counted, not silent).
        kept = [e for e in examples if any(label != IGNORE_INDEX for label in e.labels)]
        if len(kept) < len(examples):
            print(f"owlore-bench: {len(examples) - len(kept)} of {len(examples)} records in {source} have no "
                  f"response token within max_length={max_length} and are skipped")
        return cls(kept, pad_token_id, seed)

    @classmethod
    def from_file(cls, path: str | Path, tokenizer: Any, max_length: int, template: str = "alpaca",
                  limit: int | None = None, seed: int = 0) -> TrainingData:
        return cls.from_records(read_records(path, limit), tokenizer, max_length, template, seed, source=str(path))

    def __len__(self) -> int:
        return len(self.examples)

    def _example_index(self, position: int) -> int:
        epoch, offset = divmod(position, self.epoch_rows or len(self.examples))
        if epoch not in self._orders:
            self._orders = {epoch: np.random.default_rng([self.seed, epoch]).permutation(len(self.examples))}
        return int(self._orders[epoch][offset])

    def batch(self, index: int, batch_size: int) -> dict[str, torch.Tensor]:
        """Micro-batch number `index` (0-based): input_ids, attention_mask, labels, right-padded to its longest."""
        chosen = [self.examples[self._example_index(index * batch_size + k)] for k in range(batch_size)]
        width = max(len(e.input_ids) for e in chosen)
        input_ids = torch.full((batch_size, width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((batch_size, width), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((batch_size, width), dtype=torch.long)
        for row, example in enumerate(chosen):
            length = len(example.input_ids)
            input_ids[row, :length] = torch.tensor(example.input_ids)
            labels[row, :length] = torch.tensor(example.labels)
            attention_mask[row, :length] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
