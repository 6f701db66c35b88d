"""Judge answers, FastChat single-answer grading: one judgment per (question, model, turn), appended to a JSONL.

A judgments line is FastChat's (fastchat/llm_judge/common.py play_a_match_single): question_id, model,
judge ([judge model, prompt name]), user_prompt, judgment, score, turn, tstamp — plus `judge_identity` (backend,
model, base_url, temperature, max_tokens, prompts). FastChat's show_result.py reads these files as they are.

Resume: a rerun judges only the (question, model, turn) triples missing from the file. One file holds one judge:
the file name comes from the judge identity (judge_slug) and a file holding another identity is refused. A reply
without a rating is kept with score -1 and the run goes on.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from owlore_bench.errors import UserError
from owlore_bench.mtbench.judges import Judge, judge_slug
from owlore_bench.mtbench.prompts import JudgePrompt, build_judge_prompt
from owlore_bench.mtbench.questions import SINGLE_PROMPTS
from owlore_bench.mtbench.scores import parse_rating
from owlore_bench.results import drop_torn_tail


def judge_identity(judge: Judge) -> dict[str, Any]:
    """The judge's own identity plus the FastChat prompts it is given."""
    return {**judge.identity, "prompts": list(SINGLE_PROMPTS)}


def judgments_path(folder: str | Path, judge: Judge) -> Path:
    """<folder>/judgments/<judge slug>.jsonl"""
    return Path(folder) / "judgments" / f"{judge_slug(judge.identity)}.jsonl"


def _existing(out_file: Path, identity: dict[str, Any]) -> list[dict[str, Any]]:
    rows = drop_torn_tail(out_file)
    for row in rows:
        if row.get("judge_identity") != identity:
            other = row.get("judge_identity") or row.get("judge")
            raise UserError(f"{out_file}: holds judgments by another judge ({other}); judges are never mixed: "
                            f"write to another folder or delete the file")
    return rows


def pending_requests(answers: list[dict[str, Any]], questions: list[dict[str, Any]], prompts: dict[str, Any],
                     references: dict[int, list[str]], done: set[tuple[int, str, int]]
                     ) -> list[tuple[tuple[int, str, int], JudgePrompt]]:
    """((question_id, model, turn), prompt) for every judgment not in `done`; turn 2 only for two-turn questions."""
    by_id = {question["question_id"]: question for question in questions}
    todo = []
    for answer in answers:
        question = by_id[answer["question_id"]]
        for turn in range(1, len(question["turns"]) + 1):
            key = (question["question_id"], str(answer["model_id"]), turn)
            if key not in done:
                todo.append((key, build_judge_prompt(question, answer["choices"][0]["turns"], turn, prompts,
                                                     references)))
    return todo


def judge_answers(answers: list[dict[str, Any]], questions: list[dict[str, Any]], prompts: dict[str, Any],
                  references: dict[int, list[str]], judge: Judge, out_file: str | Path) -> list[dict[str, Any]]:
    """Judge every turn of `answers` not yet in `out_file`, appending one line per judgment as it arrives.

    Returns the judgments (old and new) of these answers. Every prompt is built before the first request, so a
    missing reference answer costs no judge call.
    """
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    identity = judge_identity(judge)
    rows = _existing(out_file, identity)
    todo = pending_requests(answers, questions, prompts, references,
                            {(row["question_id"], str(row["model"]), row["turn"]) for row in rows})
    with open(out_file, "a") as sink:
        for index, reply in judge.complete_many([(prompt.system, prompt.user) for _, prompt in todo]):
            (question_id, model, turn), prompt = todo[index]
            row = {"question_id": question_id, "model": model, "judge": [identity["model"], prompt.name],
                   "user_prompt": prompt.user, "judgment": reply, "score": parse_rating(reply), "turn": turn,
                   "tstamp": time.time(), "judge_identity": identity}
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            rows.append(row)
    wanted = {(answer["question_id"], str(answer["model_id"])) for answer in answers}
    return [row for row in rows if (row["question_id"], str(row["model"])) in wanted]
