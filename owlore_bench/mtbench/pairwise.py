"""MT-Bench pairwise judging, as FastChat's gen_judgment.py --mode pairwise-baseline | pairwise-all plays it.

Prompts (fastchat/llm_judge/common.py run_judge_pair): turn 1 `pair-v2` (the question and both assistants'
answers), turn 2 `pair-v2-multi-turn` (both whole two-turn conversations); math, reasoning and coding
`pair-math-v1(-multi-turn)`, which also show the reference answer(s). Texts verbatim from judge_prompts.jsonl,
filled with str.format; the judge gets a system and a user message, as FastChat sends them to an OpenAI judge.
Verdict (output format `[[A]]`): "[[A]]" anywhere in the reply → A, else "[[B]]" → B, else "[[C]]" → tie, else
error; a `[[rating_a,rating_b]]` prompt compares the two ratings (tie within 0.1), as FastChat does.

Every game is played in both orders (FastChat's remedy for position bias): game 1 shows model_1 as assistant A,
game 2 shows model_2 as A. g1_winner / g2_winner name model_1, model_2, tie or error.
Matches: pairwise-baseline — every model against the baseline (model_1 = the model, model_2 = the baseline, as
make_match); pairwise-all — every two models in the order given (make_match_all_pairs). A model id
`.../LABEL/seed-S` (the runner's) is row LABEL of seed S: the models of one seed play each other, and a row with
a single model (the base model) plays every seed of the others. Other ids are their own row.

File: <folder>/mt_bench_pairwise/<judge file slug>_pair.jsonl, rows as FastChat's model_judgment/<judge>_pair.jsonl
(question_id, model_1, model_2, g1_winner, g2_winner, judge [model, prompt name], g1_user_prompt, g1_judgment,
g2_user_prompt, g2_judgment, turn, tstamp) plus `judge_identity` (judging.judge_identity with the pair prompts:
the references' sha256 is in it). A rerun plays only the (question, pair, turn) games missing from the file.
"""

from __future__ import annotations

import ast
import json
import re
import time
from pathlib import Path
from typing import Any

from owlore_bench.errors import UserError
from owlore_bench.mtbench.judges import Judge
from owlore_bench.mtbench.judging import existing_judgments, judge_file_slug, judge_identity
from owlore_bench.mtbench.prompts import JudgePrompt
from owlore_bench.mtbench.questions import (
    NEED_REF_CATS,
    Reference,
    check_references,
    load_answers,
    load_judge_prompts,
    load_questions,
)

PAIR_PROMPTS = ("pair-v2", "pair-math-v1", "pair-v2-multi-turn", "pair-math-v1-multi-turn")
PAIR_FOLDER = "mt_bench_pairwise"
TIE_DELTA = 0.1  # FastChat's: two ratings closer than this are a tie
TWO_SCORES = re.compile(r"\[\[(\d+\.?\d*),\s?(\d+\.?\d*)\]\]")
TWO_SCORES_BACKUP = re.compile(r"\[(\d+\.?\d*),\s?(\d+\.?\d*)\]")
RUNNER_ID = re.compile(r"(?:.*/)?(?P<label>[^/]+)/seed-(?P<seed>\d+)")
GAME_1, GAME_2 = {"A": "model_1", "B": "model_2"}, {"A": "model_2", "B": "model_1"}


def pair_prompt_name(category: str, turn: int) -> str:
    """FastChat's pairwise prompt for a question category and turn (1 or 2)."""
    base = "pair-math-v1" if category in NEED_REF_CATS else "pair-v2"
    return base if turn == 1 else base + "-multi-turn"


def check_pair_prompts(prompts: dict[str, dict[str, Any]]) -> None:
    """One line when judge_prompts.jsonl lacks one of the four pair prompts or gives it an unknown format."""
    for name in PAIR_PROMPTS:
        if name not in prompts:
            raise UserError(f"judge_prompts.jsonl: judge prompt '{name}' is missing (FastChat's judge_prompts.jsonl "
                            f"has it); pairwise judging needs {', '.join(PAIR_PROMPTS)}")
        if prompts[name]["output_format"] not in ("[[A]]", "[[rating_a,rating_b]]"):
            raise UserError(f"judge_prompts.jsonl: judge prompt '{name}' must have output_format '[[A]]' or "
                            f"'[[rating_a,rating_b]]' (got {prompts[name]['output_format']!r})")


def build_pair_prompt(question: dict[str, Any], turns_a: list[str], turns_b: list[str], turn: int,
                      prompts: dict[str, dict[str, Any]], references: dict[int, list[str]]) -> JudgePrompt:
    """The judge request comparing answers A and B on `turn` (1 or 2) of one question (run_judge_pair)."""
    qid, category = question["question_id"], question["category"]
    template = prompts[pair_prompt_name(category, turn)]
    fields: dict[str, str] = {}
    if category in NEED_REF_CATS:
        if len(references.get(qid, [])) < turn:
            raise UserError(f"question {qid} ({category}) needs a reference answer for turn {turn} and the "
                            f"reference answers file has none")
        fields = {f"ref_answer_{k + 1}": references[qid][k] for k in range(turn)}
    if turn == 2:
        user = template["prompt_template"].format(
            question_1=question["turns"][0], question_2=question["turns"][1], answer_a_1=turns_a[0],
            answer_b_1=turns_b[0], answer_a_2=turns_a[1], answer_b_2=turns_b[1], **fields)
    else:
        user = template["prompt_template"].format(question=question["turns"][0], answer_a=turns_a[0],
                                                  answer_b=turns_b[0], **fields)
    return JudgePrompt(name=template["name"], system=template["system_prompt"], user=user)


def parse_verdict(judgment: str, output_format: str = "[[A]]") -> str:
    """'A', 'B', 'tie' or 'error' for a judge reply, exactly as run_judge_pair reads it (module docstring)."""
    if output_format == "[[A]]":
        for mark, verdict in (("[[A]]", "A"), ("[[B]]", "B"), ("[[C]]", "tie")):
            if mark in judgment:
                return verdict
        return "error"
    match = TWO_SCORES.search(judgment) or TWO_SCORES_BACKUP.search(judgment)
    if not match:
        return "error"
    score_a, score_b = (ast.literal_eval(text.strip()) for text in match.groups())
    return "tie" if abs(score_a - score_b) <= TIE_DELTA else "A" if score_a > score_b else "B"


def model_row(model_id: str) -> tuple[str, int | None]:
    """(row label, seed) of a model id: the runner's '<experiment>/<label>/seed-<s>' → (label, s); else (id, None)."""
    match = RUNNER_ID.fullmatch(str(model_id))
    return (match["label"], int(match["seed"])) if match else (str(model_id), None)


def make_matches(models: list[str], mode: str, baseline: str | None = None) -> list[tuple[str, str]]:
    """(model_1, model_2) of every match `mode` plays among `models` (module docstring); `baseline` is a row
    label or a model id."""
    rows: dict[str, dict[int | None, str]] = {}
    for model in models:
        label, seed = model_row(model)
        rows.setdefault(label, {})[seed] = model
    if mode == "pairwise-all":
        labels = list(rows)
        pairs = [(a, b) for i, a in enumerate(labels) for b in labels[i + 1:]]
    elif mode == "pairwise-baseline":
        chosen = [label for label in rows if baseline in (label, *rows[label].values())]
        if not chosen:
            raise UserError(f"baseline {baseline!r} (--baseline, mt_bench.baseline): no model of that row or id "
                            f"among the answers (rows: {', '.join(rows)}); give one of them")
        pairs = [(label, chosen[0]) for label in rows if label != chosen[0]]
    else:
        raise UserError(f"--mode {mode}: pairwise modes are pairwise-baseline and pairwise-all")
    matches: list[tuple[str, str]] = []
    for a, b in pairs:
        for seed in sorted(set(rows[a]) | set(rows[b]), key=lambda s: (s is None, s or 0)):
            one, two = _of_seed(rows[a], seed), _of_seed(rows[b], seed)
            if one and two and (one, two) not in matches:
                matches.append((one, two))
    if not matches:
        raise UserError(f"--mode {mode}: nothing to compare among {len(models)} model(s) ({', '.join(models)}); "
                        f"pairwise judging needs two rows")
    return matches


def _of_seed(models_by_seed: dict[int | None, str], seed: int | None) -> str | None:
    """A row's model of `seed`, else its only model (a row of one seed plays every seed), else none."""
    return models_by_seed.get(seed) or (next(iter(models_by_seed.values())) if len(models_by_seed) == 1 else None)


def pair_identity(judge: Judge, reference: Reference) -> dict[str, Any]:
    """judging.judge_identity with the pair prompts in place of the single-grading ones."""
    return {**judge_identity(judge, reference), "prompts": list(PAIR_PROMPTS)}


def pair_path(folder: str | Path, judge: Judge, reference: Reference) -> Path:
    """<folder>/mt_bench_pairwise/<judge file slug>_pair.jsonl"""
    return Path(folder) / PAIR_FOLDER / f"{judge_file_slug(judge, reference)}_pair.jsonl"


def game_key(question_id: int, model_1: str, model_2: str, turn: int) -> tuple[int, str, str, int]:
    """A game whichever model was model_1: (question_id, the two models sorted, turn)."""
    return (question_id, *sorted((str(model_1), str(model_2))), turn)


def load_pair_answers(answer_files: list[Path], question_ids: set[int] | None = None
                      ) -> tuple[list[dict[str, Any]], dict[str, dict[int, dict[str, Any]]]]:
    """(the answered questions in file order, {model: {question_id: answer}}) of several answers files, only
    `question_ids` if given. One line when two files hold one model, or when the models answered different
    questions (naming each file's missing ids)."""
    questions, answers, source = load_questions(), {}, {}
    for path in answer_files:
        for answer in load_answers(path, questions):
            model = str(answer["model_id"])
            if source.setdefault(model, path) != path:
                raise UserError(f"model {model!r} has answers in {source[model]} and in {path}; give each model once")
            if question_ids is None or answer["question_id"] in question_ids:
                answers.setdefault(model, {})[answer["question_id"]] = answer
    answered = set().union(*map(set, answers.values())) if answers else set()
    gaps = [f"{source[model]} ({model}): {', '.join(map(str, sorted(answered - set(mine))))}"
            for model, mine in answers.items() if answered - set(mine)]
    if gaps:
        raise UserError(f"pairwise judging needs every model's answers to the same questions; missing question ids: "
                        f"{'; '.join(gaps)} (answer them, or give files that cover the same questions)")
    return [q for q in questions if q["question_id"] in answered], answers


def pending_games(questions: list[dict[str, Any]], answers: dict[str, dict[int, dict[str, Any]]],
                  matches: list[tuple[str, str]], prompts: dict[str, Any], references: dict[int, list[str]],
                  done: set[tuple[int, str, str, int]]) -> list[tuple[dict[str, Any], JudgePrompt, JudgePrompt]]:
    """(row head, game-1 prompt, game-2 prompt) of every game not in `done`; turn 2 only for two-turn questions."""
    games = []
    for question in questions:
        qid = question["question_id"]
        for turn in range(1, len(question["turns"]) + 1):
            for model_1, model_2 in matches:
                if game_key(qid, model_1, model_2, turn) in done:
                    continue
                turns_1, turns_2 = (answers[m][qid]["choices"][0]["turns"] for m in (model_1, model_2))
                head = {"question_id": qid, "model_1": model_1, "model_2": model_2, "turn": turn}
                games.append((head, build_pair_prompt(question, turns_1, turns_2, turn, prompts, references),
                              build_pair_prompt(question, turns_2, turns_1, turn, prompts, references)))
    return games


def play_games(games: list[tuple[dict[str, Any], JudgePrompt, JudgePrompt]], judge: Judge, identity: dict[str, Any],
               prompts: dict[str, Any], out_file: Path) -> list[dict[str, Any]]:
    """Send both orders of every game; append a FastChat pair row to `out_file` as soon as both replies are in."""
    requests = [(prompt.system, prompt.user) for _, *pair in games for prompt in pair]
    replies: dict[int, str] = {}
    rows = []
    with open(out_file, "a") as sink:
        for index, reply in judge.complete_many(requests):
            replies[index] = reply
            game = index // 2
            if 2 * game in replies and 2 * game + 1 in replies:
                head, first, second = games[game]
                fmt = prompts[first.name]["output_format"]
                g1, g2 = (parse_verdict(replies[2 * game + k], fmt) for k in (0, 1))
                row = {"question_id": head["question_id"], "model_1": head["model_1"], "model_2": head["model_2"],
                       "g1_winner": GAME_1.get(g1, g1), "g2_winner": GAME_2.get(g2, g2),
                       "judge": [identity["model"], first.name], "g1_user_prompt": first.user,
                       "g1_judgment": replies[2 * game], "g2_user_prompt": second.user,
                       "g2_judgment": replies[2 * game + 1], "turn": head["turn"], "tstamp": time.time(),
                       "judge_identity": identity}
                sink.write(json.dumps(row) + "\n")
                sink.flush()
                rows.append(row)
    return rows


def prepare_pairs(answer_files: list[Path], judge: Judge, folder: str | Path, *, mode: str, baseline: str | None,
                  reference: Reference, question_ids: set[int] | None = None) -> dict[str, Any]:
    """Everything a pairwise run needs, checked before any request: {questions, matches, prompts, identity, path,
    rows (already judged), games (pending)}."""
    questions, answers = load_pair_answers(answer_files, question_ids)
    matches = make_matches(list(answers), mode, baseline)
    check_references(reference, questions)
    prompts = load_judge_prompts()
    check_pair_prompts(prompts)
    identity, path = pair_identity(judge, reference), pair_path(folder, judge, reference)
    rows = existing_judgments(path, identity)
    done = {game_key(r["question_id"], r["model_1"], r["model_2"], r["turn"]) for r in rows}
    games = pending_games(questions, answers, matches, prompts, reference.answers, done)
    return {"questions": questions, "matches": matches, "prompts": prompts, "identity": identity, "path": path,
            "rows": rows, "games": games}


def judge_pairs(answer_files: list[Path], judge: Judge, folder: str | Path, *, mode: str, baseline: str | None,
                reference: Reference, question_ids: set[int] | None = None) -> dict[str, Any]:
    """Play every pending game of `mode` among the models of `answer_files` into the pair file under `folder`.

    Returns {path: the pair file, rows: its rows of these matches and questions (old and new), judged: games
    played now}. Every prompt is built before the first request, so a missing reference costs no judge call.
    """
    job = prepare_pairs(answer_files, judge, folder, mode=mode, baseline=baseline, reference=reference,
                        question_ids=question_ids)
    job["path"].parent.mkdir(parents=True, exist_ok=True)
    new = play_games(job["games"], judge, job["identity"], job["prompts"], job["path"])
    wanted = {q["question_id"] for q in job["questions"]}
    pairs = {tuple(sorted(match)) for match in job["matches"]}
    rows = [row for row in job["rows"] + new if row["question_id"] in wanted
            and tuple(sorted((row["model_1"], row["model_2"]))) in pairs]
    return {"path": job["path"], "rows": rows, "judged": len(new)}
