"""Instruction data → tokenized training batches.

Records are LLM-Adapters / Alpaca JSON: `[{"instruction": str, "input": str, "output": str}, ...]` (or JSONL, one
record a line), LMFlow JSON (owlore_bench/datasets/lmflow.py) or a hub file / dataset by name
(owlore_bench/datasets/hub.py). For Alpaca records the prompt tokens are masked out of the loss (label -100); the
response gets an EOS; sequences are truncated to `max_length` tokens. LMFlow records and packed blocks are
tokenized the LMFlow way (owlore_bench/train/packing.py). Batch k is a pure function of (seed, k), so a resumed
run sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from owlore_bench.datasets import embedded, gsm8k, hub, lmflow
from owlore_bench.datasets.templates import render_prompt
from owlore_bench.errors import UserError, did_you_mean

IGNORE_INDEX = -100
def resolve_data_path(path: str | Path) -> Path:
    """A data file path. Three shorthands:
    `commonsense:<task>[/test]` — an embedded commonsense train (or test) set, inside the package;
    `bigbench:default` / `bigbench:task_a,task_b` — the train split of BIG-bench tasks read from your own BIG-bench
    checkout or sdist ($OWLORE_BENCH_BIGBENCH, owlore_bench/datasets/bigbench.py);
    `data:<relative path>` — a file under your data root ($OWLORE_BENCH_DATA, else ./data).
    """
    text = str(path)
    if text.startswith(embedded.SCHEME):
        return embedded.resolve(text)
    if text.startswith("bigbench:"):
        from owlore_bench.datasets import bigbench

        names = text.split(":", 1)[1]
        return bigbench.training_file(None if names in ("", "default") else names.split(","))
    if text.startswith("data:"):
        from owlore_bench.paths import data_root

        return data_root() / text.split(":", 1)[1]
    return Path(path)


def read_all_records(paths: str | list[str], limit: int | None = None) -> list[dict[str, str]]:
    """Records of one file or the concatenation of several; `limit` applies to each file."""
    return read_sources(paths, limit)[0]


def read_sources(paths: str | list[str], limit: int | None = None) -> tuple[list[dict[str, str]], list[dict]]:
    """(records of every file concatenated, one fact row per file for summary.json: its source, sha256 and, for
    the hub, repo / revision / commit)."""
    records, facts = [], []
    for path in _expand_hub_folders([paths] if isinstance(paths, str) else paths):
        more, fact = read_records_and_facts(path, limit)
        records += more
        facts.append(fact)
    return records, facts


def _expand_hub_folders(paths: list[str]) -> list[str]:
    """Each `hf://repo/folder/@rev` replaced by its .json files (hub.folder_files), each `commonsense:a,b` by one
    name per embedded file; other paths unchanged."""
    return [file for path in paths for named in embedded.expand(str(path))
            for file in (hub.folder_files(named) if hub.is_folder_name(named) else [named])]


def read_records(path: str | Path, limit: int | None = None) -> list[dict[str, str]]:
    """Validated records of a JSON array / JSONL / LMFlow file; one clear error naming the file and the record."""
    return read_records_and_facts(path, limit)[0]


def read_records_and_facts(path: str | Path, limit: int | None = None) -> tuple[list[dict[str, str]], dict]:
    text = str(path)
    if text.startswith(hub.DATASET_SCHEME):
        rows, facts = hub.load_rows(text)
        return lmflow.records_from_columns(rows[:limit] if limit else rows, text), facts
    if text.startswith(hub.FILE_SCHEME):
        path, facts = hub.fetch_file(text)
    else:
        path = resolve_data_path(path)
        facts = {"source": text}
    if path.is_dir():
        raise UserError(f"data: {path} is a folder; give a JSON file inside it (e.g. {path}/train.json)")
    if not path.is_file():
        raise UserError(f"data file not found: {path}")
    raw = embedded.read_verified(path) if text.startswith(embedded.SCHEME) else path.read_bytes()
    facts.setdefault("sha256", hashlib.sha256(raw).hexdigest())  # of the records' bytes (decompressed, embedded)
    lines = path.suffix == ".jsonl"
    try:
        content = raw.decode("utf-8")
        records = [json.loads(line) for line in content.splitlines() if line.strip()] if lines else json.loads(content)
    except (ValueError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not valid JSON{'L' if lines else ''} ({error})") from None
    if lmflow.is_lmflow(records):
        return lmflow.lmflow_records(records, str(path), limit), facts
    if gsm8k.is_gsm8k(records):  # {question, answer} lines: lm-eval's gsm8k prompt and target
        return gsm8k.instruction_records(records, str(path), limit), facts
    return _alpaca_records(records, path, limit), facts


def _alpaca_records(records: Any, path: Path, limit: int | None) -> list[dict[str, str]]:
    if not isinstance(records, list) or not records:
        raise UserError(f"{path}: expected a non-empty JSON array of {{instruction, input, output}} records "
                        f"or an LMFlow object {{\"type\": ..., \"instances\": [...]}}")
    records = records[:limit] if limit else records
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise UserError(f"{path}: record {index} is not an object")
        for field in ("instruction", "output"):
            if not isinstance(record.get(field), str) or not record[field]:
                found = ", ".join(map(repr, record)) or "none"
                raise UserError(f"{path}: record {index} has no string '{field}' (needs instruction, output; input "
                                f"optional; found keys: {found}).{did_you_mean(field, [str(k) for k in record])}")
        if not isinstance(record.get("input", ""), str):
            raise UserError(f"{path}: record {index} field 'input' must be a string")
    return [{"instruction": r["instruction"], "input": r.get("input", ""), "output": r["output"]} for r in records]


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]


def tokenize_record(record: dict[str, str], tokenizer: Any, template: str, max_length: int) -> Example:
    """Prompt + response + EOS, prompt masked with -100, truncated to max_length tokens."""
    prompt_ids = tokenizer(render_prompt(record, template), add_special_tokens=True)["input_ids"]
    response_ids = tokenizer(record["output"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    input_ids = (prompt_ids + response_ids)[:max_length]
    labels = ([IGNORE_INDEX] * len(prompt_ids) + response_ids)[:max_length]
    return Example(input_ids, labels)


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
    def from_records(cls, records: list[dict[str, str]], tokenizer: Any, max_length: int, template: str = "alpaca",
                     seed: int = 0, source: str = "the data") -> TrainingData:
        examples = [tokenize_record(r, tokenizer, template, max_length) for r in records]
        return cls.from_examples(examples, tokenizer.pad_token_id, max_length, seed, source)

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
