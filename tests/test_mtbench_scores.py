"""Rating parser and score aggregation as FastChat's common.py / show_result.py define them; the radar plot."""

from __future__ import annotations

import json

import pytest

from owlore_bench.mtbench.radar import plot_category_radar
from owlore_bench.mtbench.scores import aggregate, aggregate_by_model, format_scores, parse_rating


@pytest.mark.parametrize("reply, expected", [
    ("The answer is fine. Rating: [[7]]", 7),
    ("Rating: [[7.5]]", 7.5),
    ("Rating: [7]", 7),
    ("Rating: 7", -1),
    ("No verdict at all.", -1),
    ("First [[3]], on reflection [[8]].", 3),        # two ratings: the first double-bracketed one
    ("Step [2] of the proof is wrong. Rating: [[8]]", 8),  # [[x]] wins over an earlier [x]
    ("[4] and later [6]", 4),                        # only single brackets: the first
    ("Rating: [[10]]", 10),
])
def test_parse_rating(reply, expected):
    rating = parse_rating(reply)
    assert rating == expected and type(rating) is type(expected)


# A hand-written judgments file: question 81, 82 are writing, 111 is math, 131 is extraction.
CATEGORIES = {81: "writing", 82: "writing", 111: "math", 131: "extraction"}
JUDGMENTS = [(81, 1, 8), (81, 2, 6), (82, 1, 4), (82, 2, -1), (111, 1, 2), (111, 2, 3), (131, 1, -1), (131, 2, 9)]


def _rows(model="m"):
    return [{"question_id": qid, "model": model, "judge": ["j", "single-v1"], "user_prompt": "", "judgment": "",
             "score": score, "turn": turn, "tstamp": 0.0} for qid, turn, score in JUDGMENTS]


def test_aggregate_fixed_judgments_file(tmp_path):
    path = tmp_path / "judgments.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in _rows()))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    scores = aggregate(rows, CATEGORIES)
    # Valid scores: turn 1 = 8, 4, 2; turn 2 = 6, 3, 9; the two -1 are dropped.
    assert scores["turn1"] == pytest.approx(14 / 3)
    assert scores["turn2"] == pytest.approx(18 / 3)
    assert scores["overall"] == pytest.approx(32 / 6)
    # Not the mean of the turn means when the turns hold different numbers of valid judgments:
    uneven = aggregate([row for row in rows if (row["question_id"], row["turn"]) != (131, 2)], CATEGORIES)
    assert uneven["overall"] == pytest.approx(23 / 5) != pytest.approx((14 / 3 + 9 / 2) / 2)
    assert scores["categories"] == pytest.approx({"writing": 6.0, "math": 2.5, "extraction": 9.0})
    assert list(scores["categories"]) == ["writing", "math", "extraction"]  # FastChat's figure order
    assert (scores["n_valid"], scores["n_unparsed"], scores["n_turn1"], scores["n_turn2"]) == (6, 2, 3, 3)


def test_all_unparsed_gives_none_not_zero():
    rows = [{"question_id": 81, "model": "m", "score": -1, "turn": 1}]
    scores = aggregate(rows, CATEGORIES)
    assert scores["turn1"] is None and scores["overall"] is None and scores["categories"] == {"writing": None}
    assert scores["n_unparsed"] == 1


def test_models_are_scored_separately_and_the_table_shows_counts():
    rows = _rows("alpha") + [{**row, "score": 10 if row["score"] != -1 else -1} for row in _rows("beta")]
    by_model = aggregate_by_model(rows, CATEGORIES)
    assert by_model["beta"]["overall"] == 10 and by_model["alpha"]["overall"] == pytest.approx(32 / 6)
    text = format_scores(by_model, "judge j")
    average = text.split("########## Average ##########")[1]
    assert average.index("beta") < average.index("alpha")  # best first, as show_result sorts
    assert "5.3333" in average and "10.0000" in average
    assert "unparsed (-1)" in text and text.rstrip().endswith("2")


def test_radar_plot_writes_a_png(tmp_path):
    path = plot_category_radar({"lora": {"writing": 6.0, "math": 2.5, "coding": 4.0},
                                "owlore": {"writing": 7.0, "math": None, "coding": 5.0}},
                               tmp_path / "plots" / "radar.png", "MT-Bench (judge hf:smollm2-135m)")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    assert not list(path.parent.glob(".*.png"))  # no temp file left behind
