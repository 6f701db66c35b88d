"""MT-Bench inputs: the questions, GPT-4 reference answers, FastChat's judge prompts, and model-answer files.

All are read from `data_root()/mt_bench/` at run time (never copied into the repository) and validated line by
line; bad input becomes one UserError line naming the file and the record. Answer files are FastChat's
model-answer JSONL: `{question_id, answer_id, model_id, choices: [{index, turns: [a1, a2]}], tstamp}`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from owlore_bench.errors import UserError
from owlore_bench.paths import data_root

# FastChat's categories (fastchat/llm_judge/common.py temperature_config); 'arena-hard-200' is its other bench.
CATEGORIES = ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities")
KNOWN_CATEGORIES = (*CATEGORIES, "arena-hard-200")
# Categories graded against a reference answer (FastChat's NEED_REF_CATS).
NEED_REF_CATS = ("math", "reasoning", "coding", "arena-hard-200")
DEFAULT_REFERENCE = "gpt-4"  # reference_answer_gpt-4.jsonl, FastChat's default references
SINGLE_PROMPTS = ("single-v1", "single-math-v1", "single-v1-multi-turn", "single-math-v1-multi-turn")


def mtbench_dir() -> Path:
    """`<data root>/mt_bench`, or one line saying where it was looked for and how to point at it."""
    folder = data_root() / "mt_bench"
    if not (folder / "question.jsonl").is_file():
        raise UserError(f"MT-Bench data not found: {folder / 'question.jsonl'} is missing; set OWLORE_BENCH_DATA "
                        f"to the folder that holds mt_bench/ (question.jsonl, judge_prompts.jsonl, "
                        f"reference_answer_gpt-4.jsonl)")
    return folder


def read_jsonl_records(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; one error naming the file and line for bad JSON."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            raise UserError(f"{path} line {number}: not valid JSON ({error})") from None
        if not isinstance(record, dict):
            raise UserError(f"{path} line {number}: expected a JSON object")
        records.append((number, record))
    return records


def _string_list(value: Any, sizes: tuple[int, ...]) -> bool:
    return isinstance(value, list) and len(value) in sizes and all(isinstance(text, str) for text in value)


def load_questions(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The questions of question.jsonl in file order: `{question_id: int, category: str, turns: [str, str?]}`."""
    path = Path(path) if path else mtbench_dir() / "question.jsonl"
    questions, seen = [], set()
    for number, record in read_jsonl_records(path):
        where = f"{path} line {number}"
        for field in ("question_id", "category", "turns"):
            if field not in record:
                raise UserError(f"{where}: question has no '{field}' (needs question_id, category, turns)")
        qid = record["question_id"]
        if not isinstance(qid, int) or isinstance(qid, bool):
            raise UserError(f"{where}: question_id must be an integer (got {qid!r})")
        if record["category"] not in KNOWN_CATEGORIES:
            raise UserError(f"{where}: question {qid} has unknown category {record['category']!r}; "
                            f"use one of {', '.join(KNOWN_CATEGORIES)}")
        if not _string_list(record["turns"], (1, 2)) or not all(record["turns"]):
            raise UserError(f"{where}: question {qid} 'turns' must be a list of 1 or 2 non-empty strings")
        if qid in seen:
            raise UserError(f"{where}: question_id {qid} appears twice")
        seen.add(qid)
        questions.append({"question_id": qid, "category": record["category"], "turns": list(record["turns"])})
    if not questions:
        raise UserError(f"{path}: no questions")
    return questions


def load_reference_answers(path: str | Path | None = None) -> dict[int, list[str]]:
    """question_id → reference turns, from a FastChat model-answer file (default: reference_answer_gpt-4.jsonl)."""
    path = Path(path) if path else mtbench_dir() / "reference_answer_gpt-4.jsonl"
    return {record["question_id"]: record["choices"][0]["turns"] for record in _answer_records(path)}


@dataclass(frozen=True)
class Reference:
    """Reference answers for the math/reasoning/coding judge prompts: a name, its file, the file's sha256 (it joins
    the judge identity) and question_id → reference turns."""

    name: str
    path: Path
    sha256: str
    answers: dict[int, list[str]]

    @property
    def identity(self) -> dict[str, str]:
        return {"name": self.name, "sha256": self.sha256}


def load_reference(spec: str | Path | None = None) -> Reference:
    """The references `--reference FILE|NAME` means: an existing file, else NAME (default 'gpt-4') as FastChat
    names them, <data>/mt_bench/reference_answer_<NAME>.jsonl or <data>/mt_bench/reference_answer/<NAME>.jsonl."""
    spec = str(spec or DEFAULT_REFERENCE)
    path = Path(spec)
    if not path.is_file():
        folder = mtbench_dir()
        candidates = [folder / f"reference_answer_{spec}.jsonl", folder / "reference_answer" / f"{spec}.jsonl"]
        found = [candidate for candidate in candidates if candidate.is_file()]
        if not found:
            names = sorted({file.stem.removeprefix("reference_answer_") for file in
                            [*folder.glob("reference_answer_*.jsonl"), *folder.glob("reference_answer/*.jsonl")]})
            raise UserError(f"--reference {spec}: not a file, and no reference answers named {spec!r} in {folder} "
                            f"(names there: {', '.join(names) or 'none'})")
        path = found[0]
    name = spec if path != Path(spec) else path.stem
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Reference(name=name, path=path, sha256=digest, answers=load_reference_answers(path))


def check_references(reference: Reference, questions: list[dict[str, Any]]) -> None:
    """One line naming the file and the questions when a question that needs a reference answer has none."""
    missing = [q["question_id"] for q in questions if q["category"] in NEED_REF_CATS
               and len(reference.answers.get(q["question_id"], [])) < len(q["turns"])]
    if missing:
        raise UserError(f"reference answers {reference.path}: no reference answer (for every turn) to question(s) "
                        f"{', '.join(map(str, missing))}, which the math/reasoning/coding prompts need; "
                        f"give a --reference that covers them")


def load_judge_prompts(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """FastChat's judge prompts by name (judge_prompts.jsonl); the four single-grading prompts must be there."""
    path = Path(path) if path else mtbench_dir() / "judge_prompts.jsonl"
    prompts = {}
    for number, record in read_jsonl_records(path):
        missing = [key for key in ("name", "type", "system_prompt", "prompt_template", "output_format")
                   if not isinstance(record.get(key), str)]
        if missing:
            raise UserError(f"{path} line {number}: judge prompt has no string '{missing[0]}'")
        prompts[record["name"]] = record
    for name in SINGLE_PROMPTS:
        if name not in prompts:
            raise UserError(f"{path}: judge prompt '{name}' is missing (FastChat's judge_prompts.jsonl has it)")
        if prompts[name]["output_format"] != "[[rating]]":
            raise UserError(f"{path}: judge prompt '{name}' must have output_format '[[rating]]'")
    return prompts


def _answer_records(path: Path) -> list[dict[str, Any]]:
    """Shape-checked FastChat answer records; a later line for the same (question, model) replaces an earlier."""
    by_key: dict[tuple[int, str], dict[str, Any]] = {}
    for number, record in read_jsonl_records(path):
        where = f"{path} line {number}"
        for field in ("question_id", "model_id", "choices"):
            if field not in record:
                raise UserError(f"{where}: answer has no '{field}' (FastChat's model-answer format: question_id, "
                                f"answer_id, model_id, choices: [{{index, turns}}], tstamp)")
        qid, choices = record["question_id"], record["choices"]
        if not isinstance(qid, int) or isinstance(qid, bool):
            raise UserError(f"{where}: question_id must be an integer (got {qid!r})")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict) \
                or not _string_list(choices[0].get("turns"), (1, 2)):
            raise UserError(f"{where}: answer to question {qid} needs choices[0].turns, a list of 1 or 2 strings")
        by_key[(qid, str(record["model_id"]))] = record
    if not by_key:
        raise UserError(f"{path}: no answers")
    return list(by_key.values())


def load_answers(path: str | Path, questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The answers of a FastChat model-answer file, checked against the questions they answer.

    Refuses (one line naming the record) an answer to a question that is not in `questions` — an answers file
    for another question set — or one whose number of turns differs from its question's.
    """
    path = Path(path)
    by_id = {question["question_id"]: question for question in questions}
    answers = _answer_records(path)
    for answer in answers:
        qid = answer["question_id"]
        if qid not in by_id:
            raise UserError(f"{path}: answer for question_id {qid} (model {answer['model_id']}) matches no question "
                            f"in question.jsonl; is this an answers file for another question set?")
        turns = answer["choices"][0]["turns"]
        if len(turns) != len(by_id[qid]["turns"]):
            raise UserError(f"{path}: answer for question_id {qid} has {len(turns)} turn(s); the question has "
                            f"{len(by_id[qid]['turns'])}")
    return answers


def select_questions(questions: list[dict[str, Any]], limit: int | None, begin: int | None = None,
                     end: int | None = None) -> list[dict[str, Any]]:
    """questions[begin:end] (file order, contiguous: FastChat's --question-begin/--question-end), then of those
    the first `limit` taken round-robin over categories (question k of every category before question k+1 of
    any), so that a subset still covers every category; all of them when limit is None."""
    questions = questions[begin:end]
    if not questions:
        raise UserError(f"--question-begin {begin} / --question-end {end} select no question")
    if limit is None or limit >= len(questions):
        return list(questions)
    by_category: dict[str, list[dict[str, Any]]] = {}
    for question in questions:
        by_category.setdefault(question["category"], []).append(question)
    ordered = [group[k] for k in range(max(map(len, by_category.values())))
               for group in by_category.values() if k < len(group)]
    return ordered[:limit]
