"""Records -> token ids: the suite's Alpaca tokenization, LMFlow's tokenization, and LMFlow's packing.

Alpaca records (unpacked): BOS + the rendered prompt (masked out of the loss, -100), then the response + EOS,
truncated to max_length tokens (tokenize_record).

LMFlow's tokenization and grouping (the official OwLore runs: `--disable_group_texts 0 --block_size 512`).

Followed line by line from pixeli99/OwLore @ e415973 (an LMFlow fork):
- src/lmflow/models/hf_decoder_model.py `tokenize` / `tokenize_function` (lines 446-572): `text_only` ->
  tokenizer(text, add_special_tokens=True), labels = every token; `text2text` -> tokenizer(input) then
  tokenizer(output), both with add_special_tokens=False, labels -100 on the input and the output's ids on the
  output. No EOS is appended (that file sets no add_eos_token; conversation templates are not used for these two
  types). With grouping on and no LoRA, LMFlow passes truncation=False: a long record is kept whole.
- src/lmflow/pipeline/finetuner.py `group_text` (lines 118-206): datasets.map(batched=True,
  batch_size=group_texts_batch_size) over the tokenized records; each batch concatenates input_ids, labels and
  attention_mask (all ones) and keeps (total // block_size) * block_size tokens: each batch's remainder is dropped.
Written out here rather than calling LMFlow: LMFlow is not a dependency (it pins old transformers/datasets), and
these are ~20 lines of list arithmetic; tests/test_packing.py checks them against blocks derived by hand.

The suite deliberately differs in one place: a block_size above the model's context (max_position_embeddings) is
refused with one line, where LMFlow clamps it to tokenizer.model_max_length with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import Any

from owlore_bench.config import DataConfig
from owlore_bench.datasets.lmflow import alpaca_as_text2text
from owlore_bench.datasets.templates import render_prompt
from owlore_bench.errors import UserError

IGNORE_INDEX = -100


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


def as_lmflow(record: dict[str, str], template: str) -> dict[str, str]:
    """An LMFlow record as is; an Alpaca record as text2text (its rendered prompt as input)."""
    return record if "type" in record else alpaca_as_text2text(record, render_prompt(record, template))


def lmflow_tokenize(record: dict[str, str], tokenizer: Any) -> Example:
    """One LMFlow record tokenized exactly as LMFlow's tokenize_function does (see the module docstring)."""
    if record["type"] == "text_only":
        ids = tokenizer(record["text"], add_special_tokens=True)["input_ids"]
        return Example(list(ids), list(ids))
    input_ids = tokenizer(record["input"], add_special_tokens=False)["input_ids"]
    output_ids = tokenizer(record["output"], add_special_tokens=False)["input_ids"]
    return Example(list(input_ids) + list(output_ids), [IGNORE_INDEX] * len(input_ids) + list(output_ids))


def group_texts(examples: list[Example], block_size: int, group_size: int = 1000) -> list[Example]:
    """LMFlow's group_texts: every `group_size` consecutive examples are concatenated and cut into block_size
    blocks; the tokens left after the last whole block of each group are dropped."""
    blocks = []
    for start in range(0, len(examples), group_size):
        group = examples[start:start + group_size]
        input_ids = list(chain.from_iterable(e.input_ids for e in group))
        labels = list(chain.from_iterable(e.labels for e in group))
        kept = (len(input_ids) // block_size) * block_size
        blocks += [Example(input_ids[i:i + block_size], labels[i:i + block_size]) for i in range(0, kept, block_size)]
    return blocks


def check_block_size(block_size: int, context: int | None) -> None:
    """A block longer than the model's position embeddings: one line (LMFlow would clamp it with a warning)."""
    if context is not None and block_size > context:
        raise UserError(f"data.block_size: {block_size} is above the model's context (max_position_embeddings = "
                        f"{context}); use at most {context}")


def tokenize_records(records: list[dict[str, str]], tokenizer: Any, data: DataConfig, max_length: int,
                     source: str = "the data") -> list[Example]:
    """Packed blocks (data.packing) or one truncated sequence per record. Unpacked, Alpaca records keep the
    suite's tokenization (BOS + prompt, response + EOS); LMFlow records are tokenized the LMFlow way."""
    if data.packing:
        examples = [lmflow_tokenize(as_lmflow(r, data.template), tokenizer) for r in records]
        blocks = group_texts(examples, data.block_size, data.group_texts_batch_size)
        if not blocks:
            raise UserError(f"data.block_size: {source} has no group of data.group_texts_batch_size="
                            f"{data.group_texts_batch_size} records with {data.block_size} tokens; lower block_size")
        return blocks
    return [tokenize_record(r, tokenizer, data.template, max_length) if "type" not in r
            else _truncated(lmflow_tokenize(r, tokenizer), max_length) for r in records]


def _truncated(example: Example, max_length: int) -> Example:
    return Example(example.input_ids[:max_length], example.labels[:max_length])


def tokenizer_and_context(model_name: str) -> tuple[Any, int | None]:
    """(tokenizer, max_position_embeddings) of a model without loading its weights (for --dry-run): an HF id
    fetches only its tokenizer and config files."""
    from owlore_bench.models import BUILTIN_MODELS, byte_tokenizer, checkpoint_path, tiny_llama_config

    if model_name == "tiny-llama":
        return byte_tokenizer(), tiny_llama_config().max_position_embeddings
    from transformers import AutoConfig, AutoTokenizer

    # built-ins and .gguf files resolve to their cached folder; an HF id stays an id (tokenizer and config only)
    path = checkpoint_path(model_name) if model_name in BUILTIN_MODELS or model_name.endswith(".gguf") else model_name
    try:
        tokenizer, config = AutoTokenizer.from_pretrained(path), AutoConfig.from_pretrained(path)
    except OSError as error:  # offline, unknown id, gated: transformers raises OSError for each
        raise UserError(f"model '{model_name}': its tokenizer/config could not be loaded ({type(error).__name__}); "
                        f"pass a local checkpoint folder or a built-in (smollm2-135m, tiny-llama)") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # as models.load_model does
    return tokenizer, getattr(config, "max_position_embeddings", None)
