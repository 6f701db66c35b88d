"""MT-Bench in the report (tests/report_helpers.py): paired Overall differences from the judgments, questions
paired and their turns kept together, judge repeats counted once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_helpers import write_experiment, write_judgments

from owlore_bench.reporting.loading import load_results


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    return write_experiment(tmp_path)


def test_mt_bench_difference_pairs_questions_and_keeps_turns_together(experiment: Path):
    from owlore_bench.reporting.mt_bench import score_difference

    results = load_results([experiment])
    better = {(q, turn): 8 if q < 8 else 4 for q in range(16) for turn in (1, 2)}
    worse = {(q, turn): 4 for q in range(16) for turn in (1, 2)}
    write_judgments(results.rows["owlore"][0].path, {**better, (15, 2): -1})  # one unparsed judgment
    write_judgments(results.rows["owlore"][1].path, better)
    for run in results.rows["lora"]:
        write_judgments(run.path, worse)
    difference = score_difference(results.rows["owlore"], results.rows["lora"], "hf-judge")
    expected = (8 * 8 * 2 * 2 + 4 * (8 * 2 * 2 - 1)) / (16 * 2 * 2 - 1) - 4.0  # over every valid judgment
    assert difference.points == pytest.approx(expected)
    assert difference.low > 0 and difference.p_value < 0.05 and difference.n == 16
    assert score_difference(results.rows["lora"], results.rows["lora"], "hf-judge").points == 0.0
    assert score_difference(results.rows["owlore"], results.rows["full_ft"], "hf-judge") is None  # not judged


def test_mt_bench_repeats_count_once_with_their_median(experiment: Path):
    from owlore_bench.reporting.mt_bench import question_scores

    run = load_results([experiment]).rows["base"][0]
    rows = [{"question_id": 1, "model": "m", "turn": 1, "score": s, "repeat": r} for r, s in enumerate((2, 9, 3))]
    rows.append({"question_id": 1, "model": "m", "turn": 2, "score": 6, "repeat": 0})
    path = run.path / "mt_bench" / "judgments" / "hf-judge.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert question_scores([run], "hf-judge") == {1: (3 + 6, 2)}  # turn 1: median of 2, 9, 3
