"""MT-Bench in `owlore-bench run`: answers per unit, judging after the sweep, the table's MT-Bench column, the
per-category table and radar plot, and resume (no regeneration; a new judge re-judges only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import SHARED_DATA, TINY_RECORDS, run_cli

from owlore_bench.reporting.tables import build_table

JUDGE = "hf:tiny-llama"


def write_config(folder: Path, **mt_bench) -> Path:
    config = {"name": "tiny_mtbench", "model": "tiny-llama", "data": {"path": "tiny.json", "template": "plain"},
              "train": {"steps": 2, "batch_size": 4, "max_length": 64, "progress": False},
              "methods": [{"name": "full_ft"}, {"name": "lisa", "config": {"gamma": 1, "interval": 1}}],
              "mt_bench": {"judge": JUDGE, "limit": 3, "max_new_tokens": 6, "judge_max_tokens": 6, **mt_bench},
              "out": "out"}
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def stamps(folder: Path, pattern: str) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in folder.rglob(pattern)}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    if not (SHARED_DATA / "mt_bench" / "question.jsonl").is_file():
        pytest.skip(f"{SHARED_DATA}/mt_bench is absent: MT-Bench reads its questions and judge prompts there")
    folder = tmp_path_factory.mktemp("mtbench_sweep")
    (folder / "tiny.json").write_text(json.dumps(TINY_RECORDS))
    done = run_cli("run", str(write_config(folder)), cwd=folder)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder, done


def test_every_unit_answers_and_is_judged_and_the_table_has_an_mt_bench_column(sweep):
    folder, done = sweep
    out = folder / "out"
    for label in ("base", "full_ft", "lisa"):
        answers = [json.loads(line) for line in (out / label / "seed-0" / "mt_bench" / "answers.jsonl").open()]
        assert len(answers) == 3 and {len(a["choices"][0]["turns"]) for a in answers} == {2}
        (scores_file,) = (out / label / "seed-0" / "mt_bench").glob("scores-*.json")
        scores = json.loads(scores_file.read_text())
        assert scores["n_valid"] + scores["n_unparsed"] == 6  # 3 questions × 2 turns, none hidden
        assert scores["judge"]["backend"] == "hf" and scores["judge"]["model"] == "tiny-llama"
    table = build_table([out])
    (key,) = [column for column in table.columns.get_level_values(0).unique() if column.startswith("mt_bench:")]
    assert f"MT-Bench ({key.removeprefix('mt_bench:')})" in done.stdout and "judge hf:tiny-llama" in done.stdout
    assert (out / "mt_bench.md").is_file() and "Unparsed" in (out / "mt_bench.md").read_text()
    assert list((out).glob("mt_bench_radar_*.png"))
    for label in ("full_ft", "lisa"):
        stored = json.loads(next((out / label / "seed-0" / "mt_bench").glob("scores-*.json")).read_text())
        cell = table.loc[label, (key, "mean")]
        assert (cell != cell and stored["overall"] is None) or cell == pytest.approx(stored["overall"])


def test_a_rerun_regenerates_nothing_and_a_new_judge_rejudges_without_regenerating(sweep):
    folder, _ = sweep
    out = folder / "out"
    answers, judgments = stamps(out, "answers.jsonl"), stamps(out, "judgments/*.jsonl")
    again = run_cli("run", str(write_config(folder)), "--no-plots", cwd=folder)
    assert again.returncode == 0, again.stderr[-2000:]
    assert stamps(out, "answers.jsonl") == answers and stamps(out, "judgments/*.jsonl") == judgments
    # another judge (here: the same model with another reply budget, so another identity): no --force needed
    other = run_cli("run", str(write_config(folder, judge_max_tokens=4)), "--no-plots", cwd=folder)
    assert other.returncode == 0, other.stderr[-2000:]
    assert stamps(out, "answers.jsonl") == answers
    assert len(list(out.glob("full_ft/seed-0/mt_bench/scores-*.json"))) == 2  # one per judge, never mixed
    assert build_table([out]).attrs["mt_bench_judges"].keys() >= {"hf-tiny-llama-max4", "hf-tiny-llama-max6"}


def test_a_missing_api_key_is_one_line_before_anything_trains(tmp_path, monkeypatch):
    if not (SHARED_DATA / "mt_bench" / "question.jsonl").is_file():
        pytest.skip(f"{SHARED_DATA}/mt_bench is absent")
    (tmp_path / "tiny.json").write_text(json.dumps(TINY_RECORDS))
    config = write_config(tmp_path, judge="openai:gpt-4?api_key_env=OWLORE_TEST_NO_SUCH_KEY")
    done = run_cli("run", str(config), cwd=tmp_path)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and "OWLORE_TEST_NO_SUCH_KEY" in lines[0], done.stderr
    assert not (tmp_path / "out").exists()


def test_an_experiment_that_evaluates_nothing_is_refused_in_one_line(tmp_path):
    values = yaml.safe_load(write_config(tmp_path).read_text())
    del values["mt_bench"]
    (tmp_path / "nothing.yaml").write_text(yaml.safe_dump(values))
    done = run_cli("run", str(tmp_path / "nothing.yaml"), cwd=tmp_path)
    assert done.returncode == 2 and "nothing to evaluate" in done.stderr
