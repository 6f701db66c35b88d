"""MT-Bench inputs: judge prompts equal FastChat's (expected strings written out by hand), file validation."""

from __future__ import annotations

import json

import pytest

from owlore_bench.errors import UserError
from owlore_bench.mtbench.prompts import build_judge_prompt, prompt_name
from owlore_bench.mtbench.questions import load_answers, load_judge_prompts, load_questions, select_questions

MATH = {"question_id": 111, "category": "math", "turns": ["What is 3 + 4?", "Now double it."]}
MATH_ANSWERS = ["3 + 4 = 8.", "Doubled: 16."]
REFERENCES = {111: ["3 + 4 = 7.", "7 * 2 = 14."]}
WRITING = {"question_id": 81, "category": "writing", "turns": ["Write a haiku about {rain}.", "Make it sadder."]}
WRITING_ANSWERS = ["Drops on the {roof}", "Grey drops, no one home"]

# FastChat's judge prompt texts, copied by hand from judge_prompts.jsonl (lm-sys/FastChat data/judge_prompts.jsonl).
SINGLE_MATH_V1_MULTI_TURN_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant to the "
    "user question. Your evaluation should consider correctness and helpfulness. You will be given a reference "
    "answer and the assistant's answer. You evaluation should focus on the assistant's answer to the second "
    "question. Begin your evaluation by comparing the assistant's answer with the reference answer. Identify and "
    "correct any mistakes. Be as objective as possible. After providing your explanation, you must rate the "
    "response on a scale of 1 to 10 by strictly following this format: \"[[rating]]\", for example: "
    "\"Rating: [[5]]\".\n\n")
SINGLE_V1_MULTI_TURN_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant to the "
    "user question displayed below. Your evaluation should consider factors such as the helpfulness, relevance, "
    "accuracy, depth, creativity, and level of detail of the response. You evaluation should focus on the "
    "assistant's answer to the second user question. Begin your evaluation by providing a short explanation. Be as "
    "objective as possible. After providing your explanation, you must rate the response on a scale of 1 to 10 by "
    "strictly following this format: \"[[rating]]\", for example: \"Rating: [[5]]\".\n\n")


@pytest.fixture
def prompts(shared_data):
    return load_judge_prompts(shared_data / "mt_bench" / "judge_prompts.jsonl")


def test_math_turn_1_uses_the_reference(prompts):
    built = build_judge_prompt(MATH, MATH_ANSWERS, 1, prompts, REFERENCES)
    assert built.name == "single-math-v1"
    assert built.system == "You are a helpful assistant."
    assert built.user == (
        "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response provided by an AI "
        "assistant to the user question displayed below. Your evaluation should consider correctness and "
        "helpfulness. You will be given a reference answer and the assistant's answer. Begin your evaluation by "
        "comparing the assistant's answer with the reference answer. Identify and correct any mistakes. Be as "
        "objective as possible. After providing your explanation, you must rate the response on a scale of 1 to 10 "
        "by strictly following this format: \"[[rating]]\", for example: \"Rating: [[5]]\".\n\n"
        "[Question]\nWhat is 3 + 4?\n\n"
        "[The Start of Reference Answer]\n3 + 4 = 7.\n[The End of Reference Answer]\n\n"
        "[The Start of Assistant's Answer]\n3 + 4 = 8.\n[The End of Assistant's Answer]")


def test_math_turn_2_shows_both_reference_turns_and_the_conversation(prompts):
    built = build_judge_prompt(MATH, MATH_ANSWERS, 2, prompts, REFERENCES)
    assert built.name == "single-math-v1-multi-turn"
    assert built.system == SINGLE_MATH_V1_MULTI_TURN_SYSTEM
    assert built.user == (
        "<|The Start of Reference Answer|>\n\n"
        "### User:\nWhat is 3 + 4?\n\n### Reference answer:\n3 + 4 = 7.\n\n"
        "### User:\nNow double it.\n\n### Reference answer:\n7 * 2 = 14.\n\n"
        "<|The End of Reference Answer|>\n\n\n"
        "<|The Start of Assistant A's Conversation with User|>\n\n"
        "### User:\nWhat is 3 + 4?\n\n### Assistant A:\n3 + 4 = 8.\n\n"
        "### User:\nNow double it.\n\n### Assistant A:\nDoubled: 16.\n\n"
        "<|The End of Assistant A's Conversation with User|>")


def test_writing_turns_use_the_general_prompts_and_keep_braces_literal(prompts):
    first = build_judge_prompt(WRITING, WRITING_ANSWERS, 1, prompts, {})
    assert (first.name, first.system) == ("single-v1", "You are a helpful assistant.")
    assert first.user == (
        "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response provided by an AI "
        "assistant to the user question displayed below. Your evaluation should consider factors such as the "
        "helpfulness, relevance, accuracy, depth, creativity, and level of detail of the response. Begin your "
        "evaluation by providing a short explanation. Be as objective as possible. After providing your "
        "explanation, you must rate the response on a scale of 1 to 10 by strictly following this format: "
        "\"[[rating]]\", for example: \"Rating: [[5]]\".\n\n"
        "[Question]\nWrite a haiku about {rain}.\n\n"
        "[The Start of Assistant's Answer]\nDrops on the {roof}\n[The End of Assistant's Answer]")
    second = build_judge_prompt(WRITING, WRITING_ANSWERS, 2, prompts, {})
    assert (second.name, second.system) == ("single-v1-multi-turn", SINGLE_V1_MULTI_TURN_SYSTEM)
    assert second.user == (
        "<|The Start of Assistant A's Conversation with User|>\n\n"
        "### User:\nWrite a haiku about {rain}.\n\n### Assistant A:\nDrops on the {roof}\n\n"
        "### User:\nMake it sadder.\n\n### Assistant A:\nGrey drops, no one home\n\n"
        "<|The End of Assistant A's Conversation with User|>")


@pytest.mark.parametrize("category, turn, expected", [
    ("math", 1, "single-math-v1"), ("reasoning", 2, "single-math-v1-multi-turn"), ("coding", 1, "single-math-v1"),
    ("writing", 2, "single-v1-multi-turn"), ("roleplay", 1, "single-v1"), ("extraction", 1, "single-v1"),
    ("stem", 2, "single-v1-multi-turn"), ("humanities", 1, "single-v1")])
def test_reference_prompts_only_for_fastchats_need_ref_categories(category, turn, expected):
    assert prompt_name(category, turn) == expected


def test_a_math_question_without_reference_is_named(prompts):
    with pytest.raises(UserError, match="question 111 .math. needs a reference answer"):
        build_judge_prompt(MATH, MATH_ANSWERS, 1, prompts, {})


def test_the_shared_files_load(shared_data):
    questions = load_questions(shared_data / "mt_bench" / "question.jsonl")
    assert len(questions) == 80 and {len(q["turns"]) for q in questions} == {2}
    subset = select_questions(questions, 16)  # round-robin: two of each of the 8 categories
    assert sorted({q["category"] for q in subset}) == sorted({q["category"] for q in questions})
    assert all(sum(q["category"] == c for q in subset) == 2 for c in {q["category"] for q in subset})


def _write(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


@pytest.mark.parametrize("record, message", [
    ({"question_id": 2, "turns": ["a", "b"]}, "line 2: question has no 'category'"),
    ({"question_id": 2, "category": "poetry", "turns": ["a", "b"]}, "line 2: question 2 has unknown category 'poetry'"),
    ({"question_id": "two", "category": "math", "turns": ["a"]}, "line 2: question_id must be an integer"),
    ({"question_id": 2, "category": "math", "turns": ["a", "b", "c"]}, "line 2: question 2 'turns' must be a list"),
    ({"question_id": 1, "category": "math", "turns": ["a"]}, "line 2: question_id 1 appears twice"),
])
def test_bad_question_records_are_named(tmp_path, record, message):
    path = _write(tmp_path / "question.jsonl", [{"question_id": 1, "category": "math", "turns": ["a", "b"]}, record])
    with pytest.raises(UserError, match=message):
        load_questions(path)


def test_answers_for_other_questions_are_refused(tmp_path):
    questions = [{"question_id": 1, "category": "math", "turns": ["a", "b"]}]
    path = _write(tmp_path / "answers.jsonl", [{"question_id": 7, "answer_id": "x", "model_id": "m",
                                                "choices": [{"index": 0, "turns": ["a", "b"]}], "tstamp": 0.0}])
    with pytest.raises(UserError, match="answer for question_id 7 .model m. matches no question"):
        load_answers(path, questions)
    _write(path, [{"question_id": 1, "model_id": "m", "choices": [{"index": 0, "turns": ["only one"]}]}])
    with pytest.raises(UserError, match="question_id 1 has 1 turn"):
        load_answers(path, questions)
    _write(path, [{"question_id": 1, "model_id": "m", "choices": []}])
    with pytest.raises(UserError, match="line 1: answer to question 1 needs choices"):
        load_answers(path, questions)
