"""Judge answers, FastChat single-answer grading: one judgment per (question, model, turn), appended to a JSONL.

A judgments line is FastChat's (fastchat/llm_judge/common.py play_a_match_single): question_id, model,
judge ([judge model, prompt name]), user_prompt, judgment, score, turn, tstamp — plus `judge_identity` (backend,
model, base_url, temperature, max_tokens, prompts, reference: {name, sha256} of the reference answers) and, for
repeats after the first (`--judge-repeats`), `repeat` (1, 2, ...; absent = 0). FastChat's show_result.py reads
these files as they are.

Resume: a rerun judges only the (question, model, turn, repeat) judgments missing from the file. One file holds
one judge: the file name comes from the judge identity (judge_slug, plus the reference's hash when it is not the
GPT-4 file) and a file holding another identity is refused. A reply without a rating is kept with score -1.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from owlore_bench.errors import UserError
from owlore_bench.mtbench.judges import Judge, judge_slug
from owlore_bench.mtbench.prompts import JudgePrompt, build_judge_prompt
from owlore_bench.mtbench.questions import DEFAULT_REFERENCE, SINGLE_PROMPTS, Reference
from owlore_bench.mtbench.scores import parse_rating
from owlore_bench.results import drop_torn_tail


def judge_identity(judge: Judge, reference: Reference) -> dict[str, Any]:
    """The judge's own identity plus the FastChat prompts it is given and the reference answers it sees."""
    return {**judge.identity, "prompts": list(SINGLE_PROMPTS), "reference": reference.identity}


def judge_file_slug(judge: Judge, reference: Reference) -> str:
    """judge_slug, plus -ref<sha256[:8]> for references other than the GPT-4 file (their own files)."""
    slug = judge_slug(judge.identity)
    return slug if reference.name == DEFAULT_REFERENCE else f"{slug}-ref{reference.sha256[:8]}"


def judgments_path(folder: str | Path, judge: Judge, reference: Reference) -> Path:
    """<folder>/judgments/<judge file slug>.jsonl"""
    return Path(folder) / "judgments" / f"{judge_file_slug(judge, reference)}.jsonl"


def _same_judge(recorded: Any, identity: dict[str, Any]) -> bool:
    """Rows written before references joined the identity were all judged against the GPT-4 file (it was the
    only one), so they count as that reference's."""
    if isinstance(recorded, dict) and "reference" not in recorded and identity["reference"]["name"] == \
            DEFAULT_REFERENCE:
        recorded = {**recorded, "reference": identity["reference"]}
    return recorded == identity


def existing_judgments(out_file: Path, identity: dict[str, Any]) -> list[dict[str, Any]]:
    """The judgments already in `out_file` (a torn last line dropped); one line if another judge wrote them."""
    rows = drop_torn_tail(out_file)
    for row in rows:
        if not _same_judge(row.get("judge_identity"), identity):
            other = row.get("judge_identity") or row.get("judge")
            raise UserError(f"{out_file}: holds judgments by another judge ({other}); judges are never mixed: "
                            f"write to another folder or delete the file")
    return rows


def pending_requests(answers: list[dict[str, Any]], questions: list[dict[str, Any]], prompts: dict[str, Any],
                     references: dict[int, list[str]], done: set[tuple[int, str, int, int]], repeats: int = 1
                     ) -> list[tuple[tuple[int, str, int, int], JudgePrompt]]:
    """((question_id, model, turn, repeat), prompt) for every judgment not in `done`, repeats 0..repeats-1;
    turn 2 only for two-turn questions."""
    by_id = {question["question_id"]: question for question in questions}
    todo = []
    for answer in answers:
        question = by_id[answer["question_id"]]
        for turn in range(1, len(question["turns"]) + 1):
            keys = [(question["question_id"], str(answer["model_id"]), turn, repeat) for repeat in range(repeats)]
            keys = [key for key in keys if key not in done]
            if keys:
                prompt = build_judge_prompt(question, answer["choices"][0]["turns"], turn, prompts, references)
                todo += [(key, prompt) for key in keys]
    return todo


def judgment_key(row: dict[str, Any]) -> tuple[int, str, int, int]:
    """(question_id, model, turn, repeat) of a judgments row."""
    return row["question_id"], str(row["model"]), row["turn"], row.get("repeat", 0)


def judge_answers(answers: list[dict[str, Any]], questions: list[dict[str, Any]], prompts: dict[str, Any],
                  reference: Reference, judge: Judge, out_file: str | Path, repeats: int = 1) -> list[dict[str, Any]]:
    """Judge every turn of `answers` `repeats` times, skipping what `out_file` holds, appending one line per
    judgment as it arrives.

    Returns the judgments (old and new) of these answers. Every prompt is built before the first request, so a
    missing reference answer costs no judge call.
    """
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    if repeats < 1:
        raise UserError(f"--judge-repeats: must be >= 1 (got {repeats}); 1 judges each turn once, as FastChat")
    identity = judge_identity(judge, reference)
    rows = existing_judgments(out_file, identity)
    todo = pending_requests(answers, questions, prompts, reference.answers, set(map(judgment_key, rows)), repeats)
    with open(out_file, "a") as sink:
        for index, reply in judge.complete_many([(prompt.system, prompt.user) for _, prompt in todo]):
            (question_id, model, turn, repeat), prompt = todo[index]
            row = {"question_id": question_id, "model": model, "judge": [identity["model"], prompt.name],
                   "user_prompt": prompt.user, "judgment": reply, "score": parse_rating(reply), "turn": turn,
                   "tstamp": time.time(), "judge_identity": identity, **({"repeat": repeat} if repeat else {})}
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            rows.append(row)
    wanted = {(answer["question_id"], str(answer["model_id"])) for answer in answers}
    return [row for row in rows if (row["question_id"], str(row["model"])) in wanted]
