"""MT-Bench for one model: answers → judgments → scores, cached in a folder and resumable.

Layout of `<folder>` (the runner's `<unit>/mt_bench`, or the CLI's --out):
    answers.jsonl                FastChat model-answer JSONL (one line per question)
    answers.meta.json            how they were generated (prompt format, max_new_tokens, seed, tokens, seconds)
    judgments/<judge-slug>.jsonl FastChat judgments JSONL of one judge (and one set of reference answers)
    scores-<judge-slug>.json     that judge's scores (schema: score_file below)
(mode single; the pairwise modes judge the units of an experiment against each other: pairwise.py.)
A rerun regenerates nothing already answered and judges only what is missing; another judge gets its own files.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from owlore_bench.config import StrictModel, parse
from owlore_bench.errors import UserError
from owlore_bench.mtbench.generate import generate_answers, meta_path
from owlore_bench.mtbench.judges import DEFAULT_MAX_TOKENS, Judge, judge_slug, make_judge, parse_spec
from owlore_bench.mtbench.judging import judge_answers, judge_file_slug, judge_identity, judgments_path
from owlore_bench.mtbench.modes import MODES
from owlore_bench.mtbench.pairwise import judge_pairs
from owlore_bench.mtbench.questions import (
    DEFAULT_REFERENCE,
    Reference,
    check_references,
    load_answers,
    load_judge_prompts,
    load_questions,
    load_reference,
    select_questions,
)
from owlore_bench.mtbench.scores import aggregate_repeated
from owlore_bench.mtbench.templates import ANSWER_TEMPLATES, resolve_answer_template
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
    answer_template: str = Field("train", description="answer prompts: train (a run's data.template, a base "
                                 "model's chat template), chat, fastchat (FastChat's template for the model id, "
                                 "as published MT-Bench answers), fastchat:NAME (a named FastChat template)")
    question_begin: int | None = Field(None, ge=0, description="first question (index in question.jsonl), as "
                                                               "FastChat's --question-begin")
    question_end: int | None = Field(None, ge=0, description="end of the questions (exclusive), as FastChat's "
                                                             "--question-end")
    reference: str = Field(DEFAULT_REFERENCE, description="reference answers: a FastChat model-answer FILE or a "
                           "NAME in the data's mt_bench/ (reference_answer_<NAME>.jsonl); its sha256 joins the judge "
                           "identity")
    judge_repeats: int = Field(1, gt=0, description="judge each turn N times; scores use the median per turn and "
                                                    "report the judge's sd over repeats (single mode only)")
    mode: Literal[MODES] = Field(
        "single", description="FastChat's judging mode: single (grade every turn 1-10, per unit), pairwise-baseline "
        "(every row against `baseline`) or pairwise-all (every two rows), judged once every unit has answered, into "
        "<out>/mt_bench_pairwise/<judge>_pair.jsonl")
    baseline: str = Field("full_ft", description="pairwise-baseline: the method label every other row plays")

    @field_validator("answer_template")
    @classmethod
    def _answer_template_known(cls, value: str) -> str:
        kind, _, name = value.partition(":")
        if kind not in ("train", "chat", "fastchat") or (name and kind != "fastchat"):
            raise ValueError(f"unknown answer_template {value!r}; use one of {', '.join(ANSWER_TEMPLATES)}")
        return value

    @field_validator("judge")
    @classmethod
    def _judge_spec_parses(cls, value: str) -> str:
        try:
            parse_spec(value)
        except UserError as error:
            raise ValueError(str(error)) from None
        return value

    @model_validator(mode="after")
    def _pairwise_judges_once(self) -> MTBenchConfig:
        if self.mode != "single" and self.judge_repeats != 1:
            raise ValueError(f"judge_repeats {self.judge_repeats} applies to single grading; {self.mode} plays each "
                             f"game once in each answer order, as FastChat (set judge_repeats: 1 or mode: single)")
        return self


@functools.lru_cache(maxsize=4)
def cached_judge(spec: str, max_tokens: int = DEFAULT_MAX_TOKENS) -> Judge:
    """make_judge, once per (spec, max_tokens) in this process (an hf: judge loads its model once)."""
    return make_judge(spec, max_tokens)


def chosen_question_ids(settings: MTBenchConfig, questions: list[dict[str, Any]]) -> set[int]:
    """The question ids an mt_bench section asks for (question_begin/end, then limit)."""
    return {q["question_id"] for q in select_questions(questions, settings.limit, settings.question_begin,
                                                       settings.question_end)}


def scores_path(folder: str | Path, judge: Judge, reference: Reference | None = None) -> Path:
    slug = judge_file_slug(judge, reference) if reference else judge_slug(judge.identity)
    return Path(folder) / f"scores-{slug}.json"


def judge_answer_file(answers_file: str | Path, judge: Judge, folder: str | Path, *,
                      question_ids: set[int] | None = None, reference: Reference | None = None,
                      repeats: int = 1) -> dict[str, Any]:
    """Judge one model's answers file (only `question_ids` if given) `repeats` times into `folder`; write and
    return its scores.

    Reads the questions and judge prompts from the data root; `reference` defaults to the GPT-4 file.
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
    reference = reference or load_reference()
    answered = {answer["question_id"] for answer in answers}
    check_references(reference, [q for q in questions if q["question_id"] in answered])
    started = time.perf_counter()
    rows = judge_answers(answers, questions, load_judge_prompts(), reference, judge,
                         judgments_path(folder, judge, reference), repeats)
    target = scores_path(folder, judge, reference)
    earlier = read_json(target).get("judge_wall_s", 0.0) if target.is_file() else 0.0
    rows = [row for row in rows if row.get("repeat", 0) < repeats]  # a file judged more often: the first N
    scores = score_file(rows, questions, judge, reference, model_id=models[0], answers_file=answers_file,
                        judgments_file=judgments_path(folder, judge, reference))
    scores["judge_wall_s"] = earlier + time.perf_counter() - started
    write_json_atomic(target, scores)
    return scores


def score_file(rows: list[dict[str, Any]], questions: list[dict[str, Any]], judge: Judge, reference: Reference, *,
               model_id: str, answers_file: Path, judgments_file: Path) -> dict[str, Any]:
    """The scores-<judge>.json payload: FastChat's means (1-10) with counts, the judge identity and provenance.

    {model_id, judge: identity (with reference), judge_slug, turn1, turn2, overall, categories: {category: mean},
     n_valid, n_unparsed, n_turn1, n_turn2, judge_repeats, judge_sd, n_questions, answers_file, judgments_file,
     prompt_format, max_new_tokens, seed, new_tokens, answer_wall_s}; the generation fields are None for answers
    not written by us. With repeats the means are of each turn's median (scores.aggregate_repeated).
    """
    categories = {question["question_id"]: question["category"] for question in questions}
    meta = read_json(meta_path(answers_file)) if meta_path(answers_file).is_file() else {}
    return {"model_id": model_id, "judge": judge_identity(judge, reference),
            "judge_slug": judge_file_slug(judge, reference), **aggregate_repeated(rows, categories),
            "n_questions": len({row["question_id"] for row in rows}),
            "answers_file": str(answers_file), "judgments_file": str(judgments_file),
            **{key: meta.get(key) for key in ("prompt_format", "max_new_tokens", "seed", "new_tokens")},
            "answer_wall_s": meta.get("wall_s")}


def answer_for_unit(model: Any, tokenizer: Any, folder: str | Path, settings: MTBenchConfig, *, model_id: str,
                    run_dir: str | Path | None = None, prompt_format: str | None = None,
                    progress: bool = False) -> Path:
    """generate_answers into <folder>/answers.jsonl with an mt_bench section's settings; the prompt format is
    `prompt_format` if given, else what settings.answer_template means for this model (templates.py)."""
    prompt_format = prompt_format or resolve_answer_template(settings.answer_template, tokenizer, model_id=model_id,
                                                             run_dir=run_dir)
    return generate_answers(model, tokenizer, load_questions(), Path(folder) / ANSWERS_FILE, model_id=model_id,
                            prompt_format=prompt_format, max_new_tokens=settings.max_new_tokens,
                            batch_size=settings.batch_size, seed=settings.seed, limit=settings.limit,
                            question_begin=settings.question_begin, question_end=settings.question_end,
                            progress=progress)


def run_mtbench(model: Any, tokenizer: Any, unit_folder: str | Path, settings: MTBenchConfig | dict[str, Any],
                *, model_id: str, prompt_format: str | None = None, run_dir: str | Path | None = None,
                progress: bool = False) -> dict[str, Any]:
    """Answer, judge and score MT-Bench for one in-memory model.

    Writes under `<unit_folder>/mt_bench/` (see the module docstring) and returns the scores dict (score_file).
    `prompt_format` ('chat', 'alpaca', 'plain', 'fastchat:NAME') overrides settings.answer_template.
    """
    if not isinstance(settings, MTBenchConfig):
        settings = parse(MTBenchConfig, dict(settings or {}), "mt_bench")
    folder = Path(unit_folder) / "mt_bench"
    reference = load_reference(settings.reference)  # a bad reference: one line before any generation
    answer_for_unit(model, tokenizer, folder, settings, model_id=model_id, run_dir=run_dir,
                    prompt_format=prompt_format, progress=progress)
    judge = cached_judge(settings.judge, settings.judge_max_tokens)
    return judge_answer_file(folder / ANSWERS_FILE, judge, folder, question_ids=chosen_question_ids(
        settings, load_questions()), reference=reference, repeats=settings.judge_repeats)


def judge_experiment_pairs(out_dir: str | Path, answer_files: list[Path], settings: MTBenchConfig) -> int:
    """An experiment's pairwise mode (settings.mode): its units' answers to the chosen questions played against
    each other (pairwise.py) into <out_dir>/mt_bench_pairwise/<judge>_pair.jsonl; returns the games judged now."""
    reference = load_reference(settings.reference)
    chosen = chosen_question_ids(settings, load_questions())
    judge = cached_judge(settings.judge, settings.judge_max_tokens)
    return judge_pairs(answer_files, judge, out_dir, mode=settings.mode, baseline=settings.baseline,
                       reference=reference, question_ids=chosen)["judged"]
