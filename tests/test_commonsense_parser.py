"""The LLM-Adapters parser: every option marker and count, gold labels, and failures reported by index."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from owlore_bench.datasets.commonsense import RecordError, parse_record, parse_records
from owlore_bench.evaluation.local_tasks import commonsense_docs


def record(intro: str, question: str, marker: str, options: list[str], gold: int, sep: str = " ") -> dict:
    labels = [f"{marker.lower()}{k + 1}" for k in range(len(options))]
    listed = sep.join(f"{marker}{k + 1}: {text}" for k, text in enumerate(options))
    instruction = f"{intro}: {question}\n\n{listed}\n\nAnswer format: {'/'.join(labels)}"
    return {"instruction": instruction, "input": "", "output": f"the correct answer is {labels[gold]}",
            "answer": labels[gold]}


@pytest.mark.parametrize("marker, intro, count, sep", [
    ("Solution", "Please choose the correct solution to the question", 2, "\n\n"),        # piqa
    ("Answer", "Please choose the correct answer to the question", 3, " "),              # social_i_qa
    ("Answer", "Please choose the correct answer to the question", 5, " "),              # ARC, 5 options
    ("Ending", "Please choose the correct ending to complete the given sentence", 4, " "),  # hellaswag
    ("Option", "Please choose the correct answer to fill in the blank to complete the given sentence", 2, " "),
])
def test_every_marker_and_count(marker, intro, count, sep):
    options = [f"text number {k} with words" for k in range(count)]
    parsed = parse_record(record(intro, "What is _ here?", marker, options, gold=count - 1, sep=sep))
    assert parsed.options == options
    assert parsed.question == "What is _ here?"
    assert parsed.gold == count - 1
    assert parsed.labels == [f"{marker.lower()}{k + 1}" for k in range(count)]


def test_boolq_has_label_words_as_options():
    parsed = parse_record({"instruction": "Please answer the following question with true or false, question: "
                                          "is water wet?\n\nAnswer format: true/false",
                           "output": "the correct answer is false"})  # no 'answer' field: read from output
    assert (parsed.question, parsed.options, parsed.gold) == ("is water wet?", ["true", "false"], 1)


def test_option_text_may_contain_colons_and_digits():
    parsed = parse_record(record("Please choose the correct answer to the question", "Ratio?", "Answer",
                                 ["3:1", "answer 2 is: no", "1:3"], gold=0))
    assert parsed.options == ["3:1", "answer 2 is: no", "1:3"]


@pytest.mark.parametrize("broken, reason", [
    ({"instruction": "Question: x?\n\nAnswer1: a Answer2: b"}, "Answer format"),
    ({"instruction": "Q: x?\n\nAnswer1: a Answer3: b\n\nAnswer format: answer1/answer2", "answer": "answer1"},
     "Answer2:"),
    ({"instruction": "Q: x?\n\nAnswer1: a Answer2: b\n\nAnswer format: answer1/answer2", "answer": "answer7"},
     "answer7"),
    ({"instruction": "Q: x?\n\nAnswer1: a Answer2:\n\nAnswer format: answer1/answer2", "answer": "answer1"},
     "empty option"),
    ({"instruction": "Q: x?\n\nAnswer1: a Answer2: b\n\nAnswer format: answer1/answer2", "output": "dunno"},
     "no 'answer' field"),
])
def test_unreadable_records_raise_with_reason(broken, reason):
    with pytest.raises(RecordError, match=reason):
        parse_record(broken)


def test_failures_keep_their_index_and_others_are_kept():
    good = record("Please choose the correct answer to the question", "Q?", "Answer", ["a", "b"], gold=1)
    parsed, failures = parse_records([good, {"instruction": "no format"}, good, "not a dict"])
    assert len(parsed) == 2
    assert [f.index for f in failures] == [1, 3]


def test_loader_reports_unparseable_records_on_stderr(tmp_path, capsys):
    good = record("Please choose the correct answer to the question", "Q?", "Answer", ["a", "b"], gold=1)
    path = tmp_path / "test.json"
    path.write_text(json.dumps([good, {"instruction": "broken"}, good]))
    docs = commonsense_docs(path, "choices")
    assert len(docs) == 2 and docs[0] == {"prompt": "Question: Q?\nAnswer:", "choices": ["a", "b"], "gold": 1}
    assert "record 1:" in capsys.readouterr().err


_TEXT = st.text(st.characters(whitelist_categories=("L", "N"), whitelist_characters=" .,?'-"), min_size=1,
                max_size=40).map(str.strip).filter(bool)


@settings(max_examples=200, deadline=None)
@given(options=st.lists(_TEXT, min_size=2, max_size=5), marker=st.sampled_from(["Answer", "Solution", "Option",
                                                                                "Ending"]),
       question=_TEXT, data=st.data())
def test_parse_recovers_generated_records(options, marker, question, data):
    gold = data.draw(st.integers(0, len(options) - 1))
    parsed = parse_record(record("Please choose the correct answer to the question", question, marker, options, gold))
    assert parsed.options == options
    assert parsed.gold == gold
    assert parsed.question == question


@pytest.mark.parametrize("folder", ["boolq", "piqa", "social_i_qa", "ARC-Easy", "ARC-Challenge", "openbookqa"])
def test_every_shared_record_parses(shared_commonsense, folder):
    for name in ("test.json", "train.json"):
        path = shared_commonsense / folder / name
        if path.is_file():
            records = json.loads(path.read_text())
            parsed, failures = parse_records(records)
            assert failures == [] and len(parsed) == len(records)
            assert all(question.labels[question.gold] == r["answer"] for question, r in zip(parsed, records))
