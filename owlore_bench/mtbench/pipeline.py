"""MT-Bench for one model: answers → judgments → scores, cached in a folder and resumable.

Layout of `<folder>` (the runner's `<unit>/mt_bench`, or the CLI's --out):
    answers.jsonl                FastChat model-answer JSONL (one line per question)
    answers.meta.json            how they were generated (prompt format, max_new_tokens, seed, tokens, seconds)
    judgments/<judge-slug>.jsonl FastChat judgments JSONL of one judge
    scores-<judge-slug>.json     that judge's scores (schema: score_file below)
A rerun regenerates nothing already answered and judges only what is missing; another judge gets its own files.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from owlore_bench.config import StrictModel, parse
from owlore_bench.errors import UserError
from owlore_bench.mtbench.generate import generate_answers, meta_path
from owlore_bench.mtbench.judges import DEFAULT_MAX_TOKENS, Judge, judge_slug, make_judge, parse_spec
from owlore_bench.mtbench.judging import judge_answers, judge_identity, judgments_path
from owlore_bench.mtbench.questions import (
    load_answers,
    load_judge_prompts,
    load_questions,
    load_reference_answers,
    select_questions,
)
from owlore_bench.mtbench.scores import aggregate
from owlore_bench.results import read_json, write_json_atomic

ANSWERS_FILE = "answers.jsonl"


class MTBenchConfig(StrictModel):
    """MT-Bench settings of an experiment (`mt_bench:` in its YAML)."""

    judge: str = Field("hf:smollm2-135m", description="judge spec, BACKEND:MODEL[?options]: 'openai:gpt-4', "
                                                      "'openai:NAME?base_url=http://127.0.0.1:8000/v1&api_key_env="
                                                      "none', 'hf:smollm2-135m' (offline, a weak judge)")
    limit: int | None = Field(None, gt=0, description="answer only N of the 80 questions, taken round-robin over "
                                                      "the 8 categories; None = all")
    max_new_tokens: int = Field(1024, gt=0, description="tokens per answer turn (FastChat's default 1024)")
    batch_size: int = Field(8, gt=0, description="questions decoded together (left-padded batch)")
    judge_max_tokens: int = Field(DEFAULT_MAX_TOKENS, gt=0, description="tokens per judge reply (FastChat: 2048)")
    seed: int = Field(0, description="seeds the sampled (temperature > 0) answers, per question and turn")

    @field_validator("judge")
    @classmethod
    def _judge_spec_parses(cls, value: str) -> str:
        try:
            parse_spec(value)
        except UserError as error:
            raise ValueError(str(error)) from None
        return value


@functools.lru_cache(maxsize=4)
def cached_judge(spec: str, max_tokens: int = DEFAULT_MAX_TOKENS) -> Judge:
    """make_judge, once per (spec, max_tokens) in this process (an hf: judge loads its model once)."""
    return make_judge(spec, max_tokens)


def scores_path(folder: str | Path, judge: Judge) -> Path:
    return Path(folder) / f"scores-{judge_slug(judge.identity)}.json"


def judge_answer_file(answers_file: str | Path, judge: Judge, folder: str | Path, *,
                      question_ids: set[int] | None = None) -> dict[str, Any]:
    """Judge one model's answers file (only `question_ids` if given) into `folder`; write and return its scores.

    Reads the questions, reference answers and judge prompts from the data root.
    """
    answers_file, folder = Path(answers_file), Path(folder)
    questions = load_questions()
    answers = load_answers(answers_file, questions)
    if question_ids is not None:
        answers = [answer for answer in answers if answer["question_id"] in question_ids]
    models = sorted({str(answer["model_id"]) for answer in answers})
    if len(models) != 1:
        raise UserError(f"{answers_file}: answers of {len(models)} models ({', '.join(models) or 'none'}); "
                        f"judge one model's file at a time (FastChat keeps one model per file)")
    started = time.perf_counter()
    rows = judge_answers(answers, questions, load_judge_prompts(), load_reference_answers(), judge,
                         judgments_path(folder, judge))
    target = scores_path(folder, judge)
    earlier = read_json(target).get("judge_wall_s", 0.0) if target.is_file() else 0.0
    scores = score_file(rows, questions, judge, model_id=models[0], answers_file=answers_file,
                        judgments_file=judgments_path(folder, judge))
    scores["judge_wall_s"] = earlier + time.perf_counter() - started
    write_json_atomic(target, scores)
    return scores


def score_file(rows: list[dict[str, Any]], questions: list[dict[str, Any]], judge: Judge, *, model_id: str,
               answers_file: Path, judgments_file: Path) -> dict[str, Any]:
    """The scores-<judge>.json payload: FastChat's means (1-10) with counts, the judge identity and provenance.

    {model_id, judge: identity, judge_slug, turn1, turn2, overall, categories: {category: mean}, n_valid,
     n_unparsed, n_turn1, n_turn2, n_questions, answers_file, judgments_file, prompt_format, max_new_tokens,
     seed, new_tokens, answer_wall_s}; the generation fields are None for answers not written by us.
    """
    categories = {question["question_id"]: question["category"] for question in questions}
    meta = read_json(meta_path(answers_file)) if meta_path(answers_file).is_file() else {}
    return {"model_id": model_id, "judge": judge_identity(judge), "judge_slug": judge_slug(judge.identity),
            **aggregate(rows, categories), "n_questions": len({row["question_id"] for row in rows}),
            "answers_file": str(answers_file), "judgments_file": str(judgments_file),
            **{key: meta.get(key) for key in ("prompt_format", "max_new_tokens", "seed", "new_tokens")},
            "answer_wall_s": meta.get("wall_s")}


def run_mtbench(model: Any, tokenizer: Any, unit_folder: str | Path, settings: MTBenchConfig | dict[str, Any],
                *, model_id: str, prompt_format: str, progress: bool = False) -> dict[str, Any]:
    """Answer, judge and score MT-Bench for one in-memory model; the runner's call per unit.

    Writes under `<unit_folder>/mt_bench/` (see the module docstring) and returns the scores dict (score_file).
    `prompt_format`: 'chat', 'alpaca' or 'plain' (generate.resolve_prompt_format picks it for a run or a model).
    """
    if not isinstance(settings, MTBenchConfig):
        settings = parse(MTBenchConfig, dict(settings or {}), "mt_bench")
    folder = Path(unit_folder) / "mt_bench"
    questions = load_questions()
    chosen = {question["question_id"] for question in select_questions(questions, settings.limit)}
    generate_answers(model, tokenizer, questions, folder / ANSWERS_FILE, model_id=model_id,
                     prompt_format=prompt_format, max_new_tokens=settings.max_new_tokens,
                     batch_size=settings.batch_size, seed=settings.seed, limit=settings.limit, progress=progress)
    judge = cached_judge(settings.judge, settings.judge_max_tokens)
    return judge_answer_file(folder / ANSWERS_FILE, judge, folder, question_ids=chosen)
