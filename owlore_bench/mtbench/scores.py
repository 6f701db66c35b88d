"""Judge ratings and MT-Bench scores, computed as FastChat does.

Rating (fastchat/llm_judge/common.py run_judge_single): the FIRST match of `[[x]]` anywhere in the reply; only if
there is none, the first `[x]`; else -1 (unparsed). So a reply with two ratings gets the first double-bracketed
one, and a `[[x]]` wins over an earlier `[x]`. Numbers are read with ast.literal_eval: "7" → 7, "7.5" → 7.5.

Scores (fastchat/llm_judge/show_result.py, mode single): judgments scored -1 are dropped, then turn 1 = mean of
the turn-1 scores, turn 2 = mean of the turn-2 scores, overall = mean of ALL remaining scores (not the mean of the
two turn means: they differ when the turns have different numbers of valid judgments). Per-category means (the
figure in FastChat's MT-Bench notebooks) average both turns of a category. Scores are on the judge's 1-10 scale.

Repeated judging (`--judge-repeats N`, rows with `repeat` 0..N-1): each (question, model, turn) counts once, with
the median of its valid repeat scores (-1 when none is valid), as FastChat #3018 advises; `judge_sd` is the
sample standard deviation over the N repeats of the overall score each repeat alone gives (the judge's own noise,
1-10 scale; None for one repeat).
"""

from __future__ import annotations

import ast
import re
from statistics import fmean, median, stdev
from typing import Any

from owlore_bench.mtbench.questions import CATEGORIES

ONE_SCORE = re.compile(r"\[\[(\d+\.?\d*)\]\]")
ONE_SCORE_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")
UNPARSED = -1


def parse_rating(judgment: str) -> int | float:
    """The rating in a judge reply (see the module docstring), or -1 when it has none."""
    match = ONE_SCORE.search(judgment) or ONE_SCORE_BACKUP.search(judgment)
    if not match:
        return UNPARSED
    try:
        return ast.literal_eval(match.group(1))
    except (ValueError, SyntaxError):  # "07": FastChat would crash here; the number is still clear
        return float(match.group(1))


def _mean(values: list[float]) -> float | None:
    return fmean(values) if values else None


def aggregate(judgments: list[dict[str, Any]], categories: dict[int, str]) -> dict[str, Any]:
    """Scores of ONE model's judgments by ONE judge (rows with question_id, turn, score).

    `categories` maps question_id → category (a question missing there counts as 'unknown'). Returns turn1,
    turn2, overall (1-10 or None when nothing is valid), categories ({category: mean or None}, in FastChat's
    figure order, for the categories judged), n_valid (judgments with a rating), n_unparsed (scored -1),
    n_turn1, n_turn2 (valid judgments per turn).
    """
    category_of = {row["question_id"]: categories.get(row["question_id"], "unknown") for row in judgments}
    valid = [row for row in judgments if row["score"] != UNPARSED]
    turn1 = [row["score"] for row in valid if row["turn"] == 1]
    turn2 = [row["score"] for row in valid if row["turn"] == 2]
    judged = set(category_of.values())
    order = [name for name in CATEGORIES if name in judged] + sorted(judged - set(CATEGORIES))
    per_category = {name: _mean([row["score"] for row in valid if category_of[row["question_id"]] == name])
                    for name in order}
    return {"turn1": _mean(turn1), "turn2": _mean(turn2), "overall": _mean([row["score"] for row in valid]),
            "categories": per_category, "n_valid": len(valid), "n_unparsed": len(judgments) - len(valid),
            "n_turn1": len(turn1), "n_turn2": len(turn2)}


def median_of_repeats(judgments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (question_id, model, turn): the first repeat's row with the median of the valid scores."""
    groups: dict[tuple[int, str, int], list[dict[str, Any]]] = {}
    for row in judgments:
        groups.setdefault((row["question_id"], str(row["model"]), row["turn"]), []).append(row)
    merged = []
    for rows in groups.values():
        valid = [row["score"] for row in rows if row["score"] != UNPARSED]
        first = min(rows, key=lambda row: row.get("repeat", 0))
        merged.append({**first, "score": median(valid) if valid else UNPARSED})
    return merged


def repeat_spread(judgments: list[dict[str, Any]]) -> tuple[int, float | None]:
    """(repeats, sample sd of the per-repeat overall scores; None below 2 repeats with valid scores)."""
    by_repeat: dict[int, list[float]] = {}
    for row in judgments:
        by_repeat.setdefault(row.get("repeat", 0), [])
        if row["score"] != UNPARSED:
            by_repeat[row.get("repeat", 0)].append(row["score"])
    overall = [fmean(scores) for scores in by_repeat.values() if scores]
    return len(by_repeat), stdev(overall) if len(overall) > 1 else None


def aggregate_repeated(judgments: list[dict[str, Any]], categories: dict[int, str]) -> dict[str, Any]:
    """aggregate() of the median per turn over repeats, plus judge_repeats and judge_sd (module docstring)."""
    repeats, spread = repeat_spread(judgments)
    return {**aggregate(median_of_repeats(judgments), categories), "judge_repeats": repeats, "judge_sd": spread}


def aggregate_by_model(judgments: list[dict[str, Any]], categories: dict[int, str]) -> dict[str, dict[str, Any]]:
    """{model: aggregate(...)} for a judgments file holding several models (one judge)."""
    models: dict[str, list[dict[str, Any]]] = {}
    for row in judgments:
        models.setdefault(str(row["model"]), []).append(row)
    return {model: aggregate_repeated(rows, categories) for model, rows in models.items()}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _ranked(scores: dict[str, dict[str, Any]], key: str) -> list[tuple[str, dict[str, Any]]]:
    """Best first; a model with no valid judgment there last (shown as '-', not hidden)."""
    return sorted(scores.items(), key=lambda item: (item[1][key] is None, -(item[1][key] or 0.0)))


def format_scores(scores: dict[str, dict[str, Any]], caption: str) -> str:
    """FastChat show_result.py's three tables (first turn, second turn, average; best first), then the
    per-category means and the unparsed counts, as plain text."""
    width = max([len("model"), *map(len, scores)])
    lines = [caption]
    repeated = any(s.get("judge_sd") is not None for s in scores.values())
    for title, key, turn in (("First turn", "turn1", "1"), ("Second turn", "turn2", "2"), ("Average", "overall", "")):
        spread = repeated and key == "overall"  # the judge's noise: sd over repeats of the overall score
        lines += ["", f"########## {title} ##########",
                  f"{'model':<{width}}  {'turn':>4}  {'score':>7}" + ("  judge sd (n)" if spread else "")]
        lines += [f"{model:<{width}}  {turn:>4}  {_fmt(s[key]):>7}"
                  + (f"  {_fmt(s.get('judge_sd')):>7} ({s.get('judge_repeats')})" if spread else "")
                  for model, s in _ranked(scores, key)]
    names = list(dict.fromkeys(name for s in scores.values() for name in s["categories"]))
    lines += ["", "########## Categories ##########", f"{'model':<{width}}  " + "  ".join(f"{n:>10}" for n in names)]
    lines += [f"{model:<{width}}  " + "  ".join(f"{_fmt(s['categories'].get(n)):>10}" for n in names)
              for model, s in scores.items()]
    lines += ["", "########## Judgments ##########", f"{'model':<{width}}  {'valid':>6}  {'unparsed (-1)':>13}"]
    lines += [f"{model:<{width}}  {s['n_valid']:>6}  {s['n_unparsed']:>13}" for model, s in scores.items()]
    return "\n".join(lines)
