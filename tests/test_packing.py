"""LMFlow-exact packing (owlore_bench/train/tokenize.py) against blocks derived by hand, LMFlow's JSON format and
the block-size check.

The toy tokenizer is word-level: <s>=0 </s>=1 <pad>=2 a=3 b=4 c=5 d=6 e=7, one token per space-separated word,
and add_special_tokens=True puts <s> in front (as LLaMA's tokenizer does), so every expected id is countable.
"""

from __future__ import annotations

import json

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from owlore_bench.config import DataConfig
from owlore_bench.datasets.records import read_records
from owlore_bench.errors import UserError
from owlore_bench.train.data import TrainingData
from owlore_bench.train.tokenize import check_block_size, group_texts, lmflow_tokenize

X = -100  # the ignored label


@pytest.fixture(scope="module")
def toy():
    vocab = {word: index for index, word in enumerate(["<s>", "</s>", "<pad>", "a", "b", "c", "d", "e"])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def _write_lmflow(path, kind, instances):
    path.write_text(json.dumps({"type": kind, "instances": instances}))
    return path


def _blocks(data):
    return [(e.input_ids, e.labels) for e in data.examples]


def test_text2text_labels_only_the_output_adds_no_special_token_and_drops_each_groups_remainder(tmp_path, toy):
    records = read_records(_write_lmflow(tmp_path / "t2t.json", "text2text", [
        {"input": "a b", "output": "c"},    # ids 3 4 | 5       labels X X | 5
        {"input": "d", "output": "e e"},    # ids 6 | 7 7       labels X | 7 7
        {"input": "a", "output": "b"},      # ids 3 | 4         labels X | 4   (alone in the second group)
    ]))
    data = TrainingData.build(records, toy, DataConfig(path="x", packing=True, block_size=4,
                                                        group_texts_batch_size=2), max_length=99)
    # group 1 = records 0-1: 3 4 5 6 7 7 -> one block of 4, the trailing "7 7" dropped; group 2 = 2 tokens -> none.
    # (Grouping all records at once would give 2 blocks: 3 4 5 6 | 7 7 3 4.)
    assert _blocks(data) == [([3, 4, 5, 6], [X, X, 5, X])]
    assert all(a == 1 for a in data.batch(0, 1)["attention_mask"].flatten().tolist())


def test_text_only_gets_the_tokenizers_special_tokens_and_labels_on_every_token(tmp_path, toy):
    records = read_records(_write_lmflow(tmp_path / "text.json", "text_only", [{"text": "a b c"}, {"text": "d e"}]))
    data = TrainingData.build(records, toy, DataConfig(path="x", packing=True, block_size=3), max_length=99)
    # <s> a b c <s> d e = 0 3 4 5 0 6 7 -> blocks 0 3 4 | 5 0 6, the last "7" dropped
    assert _blocks(data) == [([0, 3, 4], [0, 3, 4]), ([5, 0, 6], [5, 0, 6])]


def test_an_alpaca_record_packs_as_text2text_with_its_rendered_prompt_as_input(toy):
    record = {"instruction": "a b", "input": "c", "output": "d e"}  # plain template: "a b\nc" -> 3 4 5
    assert lmflow_tokenize({"type": "text2text", "input": "a b\nc", "output": "d e"}, toy).labels == [X, X, X, 6, 7]
    data = TrainingData.build([record], toy, DataConfig(path="x", template="plain", packing=True, block_size=5),
                               max_length=99)
    assert _blocks(data) == [([3, 4, 5, 6, 7], [X, X, X, 6, 7])]  # no <s>, no </s>: as LMFlow's text2text


def test_unpacked_lmflow_records_are_truncated_to_max_length(tmp_path, toy):
    records = read_records(_write_lmflow(tmp_path / "t2t.json", "text2text", [{"input": "a", "output": "b c d"}]))
    data = TrainingData.build(records, toy, DataConfig(path="x"), max_length=3)
    assert _blocks(data) == [([3, 4, 5], [X, 4, 5])]


def test_group_texts_keeps_whole_blocks_of_every_group():
    from owlore_bench.train.tokenize import Example

    examples = [Example([k] * 5, [k] * 5) for k in range(4)]  # 5 tokens each
    blocks = group_texts(examples, block_size=4, group_size=2)  # 10 tokens per group -> 2 blocks, 2 dropped
    assert [b.input_ids for b in blocks] == [[0, 0, 0, 0], [0, 1, 1, 1], [2, 2, 2, 2], [2, 3, 3, 3]]


@pytest.mark.parametrize("kind", ["conversation", "float_only"])
def test_an_unsupported_lmflow_type_is_one_line_naming_it_and_the_supported_ones(tmp_path, kind):
    path = _write_lmflow(tmp_path / "bad.json", kind, [{"messages": []}])
    with pytest.raises(UserError) as caught:
        read_records(path)
    message = str(caught.value)
    assert "\n" not in message and repr(kind) in message and "text_only, text2text" in message


def test_an_lmflow_instance_without_its_fields_names_the_instance(tmp_path):
    path = _write_lmflow(tmp_path / "bad.json", "text2text", [{"input": "a", "output": "b"}, {"input": "a"}])
    with pytest.raises(UserError, match="instance 1 needs string field"):
        read_records(path)


def test_jsonl_alpaca_records_are_read_line_by_line(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"instruction": "a", "output": "b"}\n\n{"instruction": "c", "input": "d", "output": "e"}\n')
    assert read_records(path) == [{"instruction": "a", "input": "", "output": "b"},
                                  {"instruction": "c", "input": "d", "output": "e"}]


def test_a_block_above_the_models_context_is_one_line():
    check_block_size(512, 512)
    with pytest.raises(UserError, match=r"data.block_size: 513 is above the model's context .*= 512\)"):
        check_block_size(513, 512)


def test_no_whole_block_in_any_group_is_one_line(toy):
    with pytest.raises(UserError, match="data.block_size"):
        TrainingData.build([{"type": "text_only", "text": "a b"}], toy,
                            DataConfig(path="x", packing=True, block_size=8), max_length=99)
