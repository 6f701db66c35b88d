"""A run's data plan without its weights: records, tokens, blocks (or sequences), steps per epoch, tokens per step
and steps to run — what `owlore-bench train --dry-run` and `owlore-bench run --dry-run` print.

Reading and tokenizing (or packing) the data is the slow part, so it is one object (TokenizedData) that
`run --dry-run` builds once per data setting (tokenization_key) and reuses for every unit that shares it; the
step arithmetic is train/steps.py's, the functions the loop itself runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from owlore_bench.config import RunConfig, TrainConfig
from owlore_bench.datasets.records import read_sources
from owlore_bench.train.data import TrainingData
from owlore_bench.train.steps import data_facts, global_batch, resolve_steps
from owlore_bench.train.tokenize import check_block_size, tokenizer_and_context


@dataclass
class TokenizedData:
    """The data a run would train on, read and tokenized (or packed) with its model's tokenizer."""

    sources: list[dict]  # one fact row per file (source, sha256, hub revision)
    records: int
    data: TrainingData
    packed: bool
    unit: str  # what one row of `data` is, for people: "blocks of 512 tokens" / "sequences (max_length 64)"


def tokenization_key(cfg: RunConfig) -> str:
    """What the tokenized data depends on: the model (its tokenizer), the data section and, unpacked, max_length.
    Units with the same key train on the same rows (their seeds only reorder them)."""
    max_length = None if cfg.data.packing else cfg.train.max_length
    return json.dumps([cfg.model, cfg.data.model_dump(mode="json"), max_length], sort_keys=True)


def tokenize_data(cfg: RunConfig) -> TokenizedData:
    """Read the config's data and tokenize (or pack) it with the model's tokenizer; no weights are loaded.
    Raises UserError for data or a tokenizer that cannot be read (missing file, hub offline, bad block_size)."""
    records, sources = read_sources(cfg.data.path, cfg.data.limit)
    tokenizer, context = tokenizer_and_context(cfg.model)
    if cfg.data.packing:
        check_block_size(cfg.data.block_size, context)
    data = TrainingData.build(records, tokenizer, cfg.data, cfg.train.max_length, cfg.train.seed,
                              source=str(cfg.data.path))
    unit = (f"blocks of {cfg.data.block_size} tokens" if cfg.data.packing
            else f"sequences (max_length {cfg.train.max_length})")
    return TokenizedData(sources, len(records), data, cfg.data.packing, unit)


def steps_to_run(tokenized: TokenizedData, train: TrainConfig, world_size: int = 1) -> int:
    """The steps the loop will run: train.steps, or with train.epochs ceil(epochs x whole global batches)."""
    return resolve_steps(train, tokenized.data, world_size).steps


def plan_lines(tokenized: TokenizedData, train: TrainConfig, world_size: int = 1) -> list[str]:
    """The three lines of the data plan: sources; records and tokens; steps per epoch, tokens per step, steps."""
    facts = data_facts(tokenized.records, tokenized.data, train, tokenized.packed, world_size)
    epochs = f" ({train.epochs:g} epoch(s))" if train.epochs is not None else ""
    return [f"data: {', '.join(source['source'] for source in tokenized.sources)}",
            f"records {facts['records']:,}, tokens {facts['tokens']:,} in {len(tokenized.data):,} {tokenized.unit}",
            f"steps per epoch {facts['steps_per_epoch']:,} (global batch {global_batch(train, world_size)}), "
            f"tokens per step {facts['tokens_per_step']:,}{'' if tokenized.packed else ' (mean)'}, "
            f"steps to run {steps_to_run(tokenized, train, world_size):,}{epochs}"]
