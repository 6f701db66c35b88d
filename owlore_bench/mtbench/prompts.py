"""FastChat's single-answer grading prompts, assembled exactly as fastchat/llm_judge/common.py run_judge_single does.

Turn 1 is graded with `single-v1` (question + answer), turn 2 with `single-v1-multi-turn` (the whole two-turn
conversation, the judge told to grade the second answer). Questions in math, reasoning and coding (NEED_REF_CATS)
use `single-math-v1` / `single-math-v1-multi-turn` instead, which also show the GPT-4 reference answer(s).
The prompt texts come verbatim from judge_prompts.jsonl; only the `{...}` fields are filled (str.format, as
FastChat does). The judge receives them as a system message and one user message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from owlore_bench.errors import UserError
from owlore_bench.mtbench.questions import NEED_REF_CATS


@dataclass(frozen=True)
class JudgePrompt:
    """One judge request: FastChat's prompt name, the system message and the user message."""

    name: str
    system: str
    user: str


def prompt_name(category: str, turn: int) -> str:
    """FastChat's single-grading prompt for a question category and turn (1 or 2)."""
    base = "single-math-v1" if category in NEED_REF_CATS else "single-v1"
    return base if turn == 1 else base + "-multi-turn"


def build_judge_prompt(question: dict[str, Any], answer_turns: list[str], turn: int,
                       prompts: dict[str, dict[str, Any]], references: dict[int, list[str]]) -> JudgePrompt:
    """The judge request for `turn` (1 or 2) of one answered question.

    `references` maps question_id → reference turns; it must hold every math/reasoning/coding question.
    """
    qid, category = question["question_id"], question["category"]
    template = prompts[prompt_name(category, turn)]
    fields: dict[str, str] = {}
    if category in NEED_REF_CATS:
        if qid not in references:
            raise UserError(f"question {qid} ({category}) needs a reference answer and the reference answers "
                            f"file has none for it")
        if len(references[qid]) < turn:
            raise UserError(f"question {qid}: its reference answer has {len(references[qid])} turn(s), "
                            f"turn {turn} needs {turn}")
        fields["ref_answer_1"] = references[qid][0]
        if turn == 2:
            fields["ref_answer_2"] = references[qid][1]
    if turn == 2:
        user = template["prompt_template"].format(question_1=question["turns"][0], question_2=question["turns"][1],
                                                  answer_1=answer_turns[0], answer_2=answer_turns[1], **fields)
    else:
        user = template["prompt_template"].format(question=question["turns"][0], answer=answer_turns[0], **fields)
    return JudgePrompt(name=template["name"], system=template["system_prompt"], user=user)
