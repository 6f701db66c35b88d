"""Instruction data: prompt masking, truncation, deterministic batches, real LLM-Adapters and Alpaca files."""

from __future__ import annotations

import pytest

from owlore_bench.datasets.records import read_records
from owlore_bench.datasets.templates import render_prompt
from owlore_bench.errors import UserError
from owlore_bench.models import byte_tokenizer
from owlore_bench.train.data import TrainingData
from owlore_bench.train.tokenize import IGNORE_INDEX, tokenize_record


def test_prompt_tokens_are_masked_and_response_ends_with_eos():
    tokenizer = byte_tokenizer()
    record = {"instruction": "Name a fruit.", "input": "", "output": "apple"}
    example = tokenize_record(record, tokenizer, "plain", max_length=100)
    prompt_length = len(tokenizer(render_prompt(record, "plain"))["input_ids"])
    assert example.labels[:prompt_length] == [IGNORE_INDEX] * prompt_length
    assert example.labels[prompt_length:] == example.input_ids[prompt_length:]
    assert tokenizer.decode(example.input_ids[prompt_length:-1]) == "apple"
    assert example.input_ids[-1] == tokenizer.eos_token_id


def test_alpaca_template_uses_the_input_section_only_when_input_is_given():
    with_input = render_prompt({"instruction": "Sum.", "input": "1 2", "output": "3"}, "alpaca")
    without = render_prompt({"instruction": "Sum.", "input": "", "output": "3"}, "alpaca")
    assert "### Input:\n1 2" in with_input and "### Input" not in without
    assert with_input.endswith("### Response:\n") and without.endswith("### Response:\n")


def test_truncation_keeps_max_length_tokens():
    example = tokenize_record({"instruction": "x" * 50, "input": "", "output": "y" * 50}, byte_tokenizer(), "plain", 60)
    assert len(example.input_ids) == len(example.labels) == 60


def test_batches_are_deterministic_by_seed_and_cover_every_example_each_epoch(tiny_data):
    tokenizer = byte_tokenizer()
    first = TrainingData.from_file(tiny_data, tokenizer, 64, "plain", seed=1)
    again = TrainingData.from_file(tiny_data, tokenizer, 64, "plain", seed=1)
    other = TrainingData.from_file(tiny_data, tokenizer, 64, "plain", seed=2)
    assert all((first.batch(k, 4)["input_ids"] == again.batch(k, 4)["input_ids"]).all() for k in range(4))
    assert not all(first.batch(k, 4)["input_ids"].shape == other.batch(k, 4)["input_ids"].shape
                   and (first.batch(k, 4)["input_ids"] == other.batch(k, 4)["input_ids"]).all() for k in range(2))
    epoch = [first._example_index(position) for position in range(len(first))]
    assert sorted(epoch) == list(range(len(first)))
    batch = first.batch(0, 4)
    assert ((batch["input_ids"] == tokenizer.pad_token_id) == (batch["attention_mask"] == 0)).all()
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()


@pytest.mark.parametrize("relative", ["commonsense/boolq/train.json", "commonsense/ARC-Easy/train.json",
                                      "alpaca/alpaca_gpt4_sample_999.json", "alpaca/alpaca_sample_5000.json"])
def test_reads_the_real_commonsense_and_alpaca_files(shared_data, relative):
    records = read_records(shared_data / relative, limit=50)
    assert len(records) == 50
    assert all(r["instruction"] and r["output"] for r in records)


@pytest.mark.parametrize("content,expected", [
    ("{not json", "not valid JSON"),
    ("[]", "non-empty JSON array"),
    ('[{"instruction": "a", "output": "b"}, {"instruction": "c"}]', "record 1 has no string 'output'"),
    ('[{"instruction": "a", "output": "b", "input": 3}]', "record 0 field 'input'"),
])
def test_malformed_data_names_the_file_and_record(tmp_path, content, expected):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(UserError, match=expected) as error:
        read_records(path)
    assert str(path) in str(error.value)


def test_missing_data_file_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="data file not found"):
        read_records(tmp_path / "absent.json")
