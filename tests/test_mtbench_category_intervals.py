"""The MT-Bench per-category table's 95 % intervals (reporting/mt_bench.py): each score cell bootstrapped over its
questions, a question's turns and seeds drawn together, checked against scipy.stats.bootstrap and by hand."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from owlore_bench.mtbench.scores import UNPARSED, aggregate_repeated
from owlore_bench.paths import DATA_ENV
from owlore_bench.reporting.loading import load_results
from owlore_bench.reporting.mt_bench import category_intervals, category_table, write_mtbench_files

SLUG = "test-judge"
CATEGORY_IDS = {"writing": range(81, 93), "math": range(111, 123), "coding": range(123, 135)}
CATEGORIES = {qid: category for category, ids in CATEGORY_IDS.items() for qid in ids}
LEVEL = {"writing": 6, "math": 3, "coding": 5}  # each category's typical score


def judgments(seed: int, unparsed: int = 2) -> list[dict]:
    """A judge whose two turns of one question agree (turn 2 = turn 1 ± 1): the turns are correlated, so a
    bootstrap that drew turns on their own would be too narrow. The first `unparsed` turn-2 replies are -1."""
    rng = np.random.default_rng(seed)
    rows = []
    for qid, category in CATEGORIES.items():
        first = int(np.clip(LEVEL[category] + rng.integers(-3, 4), 1, 10))
        second = int(np.clip(first + rng.integers(-1, 2), 1, 10))
        rows += [{"question_id": qid, "model": "m", "turn": 1, "score": first},
                 {"question_id": qid, "model": "m", "turn": 2, "score": second}]
    for row in [row for row in rows if row["turn"] == 2][:unparsed]:
        row["score"] = UNPARSED
    return rows


def write_unit(experiment: Path, label: str, seed: int, rows: list[dict]) -> None:
    """A finished run with its judgments file and the scores file the pipeline would write from it."""
    folder = experiment / label / f"seed-{seed}"
    (folder / "mt_bench" / "judgments").mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({"method": label, "label": label, "status": "ok"}))
    (folder / "mt_bench" / "judgments" / f"{SLUG}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    scores = {**aggregate_repeated(rows, CATEGORIES), "judge": {"backend": "openai", "model": "test-judge"}}
    (folder / "mt_bench" / f"scores-{SLUG}.json").write_text(json.dumps(scores))


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    """full_ft: one seed; lora: two seeds. The data root holds the questions (their categories) only."""
    root = tmp_path / "data" / "mt_bench"
    root.mkdir(parents=True)
    (root / "question.jsonl").write_text("".join(json.dumps({"question_id": q, "category": c, "turns": ["a", "b"]})
                                                 + "\n" for q, c in CATEGORIES.items()))
    monkeypatch.setenv(DATA_ENV, str(root.parent))
    experiment = tmp_path / "exp"
    write_unit(experiment, "full_ft", 0, judgments(0))
    write_unit(experiment, "lora", 0, judgments(1))
    write_unit(experiment, "lora", 1, judgments(2, unparsed=0))
    return experiment


def by_hand(rows: list[dict], keep) -> tuple[np.ndarray, np.ndarray]:
    """Per question (sum of valid scores, valid judgments) of the rows `keep` selects, questions without one out."""
    sums, counts = {}, {}
    for row in rows:
        if keep(row) and row["score"] != UNPARSED:
            sums[row["question_id"]] = sums.get(row["question_id"], 0) + row["score"]
            counts[row["question_id"]] = counts.get(row["question_id"], 0) + 1
    return np.array([sums[q] for q in sorted(sums)], float), np.array([counts[q] for q in sorted(sums)], float)


def scipy_interval(sums: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """Percentile bootstrap of sum(sums) / sum(counts), the questions resampled in pairs, by scipy."""
    result = stats.bootstrap((sums, counts), lambda s, c, axis: s.sum(axis) / c.sum(axis), paired=True,
                             vectorized=True, n_resamples=40_000, method="percentile", random_state=1)
    return result.confidence_interval.low, result.confidence_interval.high


def intervals_of(store: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    results = load_results([store])
    table = category_table(results, SLUG)
    return table, category_intervals(results, SLUG, table, CATEGORIES)


@pytest.mark.parametrize(("label", "seeds"), [("full_ft", [0]), ("lora", [1, 2])])
@pytest.mark.parametrize("cell", ["writing", "math", "coding", "Turn 1", "Turn 2", "Overall"])
def test_each_cell_is_scipys_bootstrap_over_its_questions_with_turns_and_seeds_together(store, label, seeds, cell):
    rows = [row for seed in seeds for row in judgments(seed, unparsed=0 if seed == 2 else 2)]
    keep = {"Turn 1": lambda row: row["turn"] == 1, "Turn 2": lambda row: row["turn"] == 2,
            "Overall": lambda row: True}.get(cell, lambda row: CATEGORIES[row["question_id"]] == cell)
    sums, counts = by_hand(rows, keep)
    low, high = scipy_interval(sums, counts)
    table, intervals = intervals_of(store)
    mine = intervals.loc[label, cell]
    expected = 36 if cell in ("Turn 1", "Turn 2", "Overall") else 12
    if (label, cell) == ("full_ft", "Turn 2"):
        expected -= 2  # its one seed's two unparsed turn-2 replies leave those questions nothing valid there
    assert mine["questions"] == len(sums) == expected
    # Monte Carlo error of a 2.5 % percentile at 10,000 (ours) and 40,000 (scipy's) draws: about 0.01 here
    assert mine["ci_low"] == pytest.approx(low, abs=0.04) and mine["ci_high"] == pytest.approx(high, abs=0.04)
    assert mine["ci_low"] < table.loc[label, cell] < mine["ci_high"]


def test_overall_width_matches_the_ratio_estimators_closed_form_and_needs_the_turns_together(store):
    """For a ratio of sums over n questions, the bootstrap's standard error is the plug-in (delta-method) one,
    sqrt(sum (s_k - r c_k)^2) / sum c; the percentile interval is about ±1.96 of it. Drawing turns one by one
    instead would ignore that a question's turns agree, and come out visibly narrower."""
    sums, counts = by_hand(judgments(0), lambda row: True)
    ratio = sums.sum() / counts.sum()
    standard_error = math.sqrt(np.sum((sums - ratio * counts) ** 2)) / counts.sum()
    _, intervals = intervals_of(store)
    half = (intervals.loc["full_ft", ("Overall", "ci_high")] - intervals.loc["full_ft", ("Overall", "ci_low")]) / 2
    assert half == pytest.approx(stats.norm.ppf(0.975) * standard_error, rel=0.08)
    scores = np.array([row["score"] for row in judgments(0) if row["score"] != UNPARSED], float)
    turn_by_turn = stats.norm.ppf(0.975) * scores.std() / math.sqrt(scores.size)
    assert half > 1.2 * turn_by_turn  # the clustering matters on this judge, so the test above can fail


def test_a_category_of_equal_scores_gets_the_exact_bound_not_zero_width_and_one_question_none(store):
    rows = [{"question_id": q, "model": "m", "turn": t, "score": 7} for q in CATEGORY_IDS["writing"] for t in (1, 2)]
    rows += [{"question_id": 111, "model": "m", "turn": 1, "score": 4}]  # math: one judged question
    write_unit(store, "base", 0, rows)
    _, intervals = intervals_of(store)
    # the bootstrap has nothing to resample: 0 of 12 questions scored otherwise, so at most psi = 1 - 0.025^(1/12)
    # of unseen ones would (Clopper-Pearson), each moving the mean at most to 1 or to 10
    psi = 1 - 0.025 ** (1 / 12)
    assert (intervals.loc["base", ("writing", "ci_low")], intervals.loc["base", ("writing", "ci_high")]) == \
        pytest.approx((7 - 6 * psi, 7 + 3 * psi))
    assert math.isnan(intervals.loc["base", ("math", "ci_low")]) and intervals.loc["base", ("math", "questions")] == 1


def test_markdown_latex_and_csv_carry_the_intervals(store, tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    paths = write_mtbench_files(load_results([store]), out, plots=False)
    assert [path.name for path in paths] == ["mt_bench.md", "mt_bench.csv", "mt_bench.tex"]
    table, intervals = intervals_of(store)
    csv = pd.read_csv(out / "mt_bench.csv").set_index("row")
    low, high = intervals.loc["full_ft", ("math", "ci_low")], intervals.loc["full_ft", ("math", "ci_high")]
    assert csv.loc["full_ft", "math_ci_low"] == pytest.approx(low) and csv.loc["full_ft", "math_ci_high"] == high
    assert csv.loc["lora", "Overall_questions"] == 36 and csv.loc["lora", "Seeds"] == 2
    mean = table.loc["full_ft", "math"]
    symmetric = f"{mean - low:.2f}" == f"{high - mean:.2f}"  # '±' only for a symmetric interval
    cell = f"{mean:.2f} ±{high - mean:.2f}" if symmetric else f"{mean:.2f} [{low:.2f}, {high:.2f}]"
    markdown = out / "mt_bench.md"
    line = next(line for line in markdown.read_text().splitlines() if line.startswith("| full_ft"))
    assert cell in line and "[low, high]: the 95 % interval" in markdown.read_text()
    assert cell.replace("±", r"$\pm$") in (out / "mt_bench.tex").read_text()
    assert re.search(r"\|\s+2\s+\|\s+70\s+\|\s+1\s+\|$", line)  # Unparsed, Judged, Seeds: integers


def test_without_the_questions_the_cells_have_no_interval_and_the_caption_says_why(store, tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "nowhere"))
    out = tmp_path / "report"
    out.mkdir()
    write_mtbench_files(load_results([store]), out, plots=False)
    text = (out / "mt_bench.md").read_text()
    assert "±" not in text.split("\n\n", 2)[2] and "[" not in text.split("\n\n", 2)[2]
    assert "No intervals: the MT-Bench questions" in text
    assert "math_ci_low" not in pd.read_csv(out / "mt_bench.csv").dropna(axis=1, how="all").columns
