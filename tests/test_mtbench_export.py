"""`mtbench export --fastchat`: FastChat's own gen_judgment.py checks and show_result.py run on the export."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from collections.abc import Iterator

import pytest

from owlore_bench.cli import main
from owlore_bench.mtbench.judges.base import Judge
from owlore_bench.mtbench.pipeline import judge_answer_file
from owlore_bench.mtbench.questions import load_questions, select_questions
from owlore_bench.paths import DATA_ENV

pytest.importorskip("fastchat")
pytest.importorskip("pandas")


class ScriptedJudge(Judge):
    """A judge whose rating depends on the prompt's length: a fixed, varied score per (answer, turn)."""

    backend = "scripted"

    def complete_many(self, requests: list[tuple[str, str]]) -> Iterator[tuple[int, str]]:
        for index, (_, user) in enumerate(requests):
            yield index, f"Fine. Rating: [[{len(user) % 10 + 1}]]"


def write_answers(folder, model_id: str, questions: list[dict]) -> None:
    folder.mkdir(parents=True)
    rows = [{"question_id": q["question_id"], "answer_id": f"a{q['question_id']}", "model_id": model_id,
             "choices": [{"index": 0, "turns": [f"{model_id} answers {k}" * (1 + q["question_id"] % 3)
                                                for k, _ in enumerate(q["turns"])]}], "tstamp": 0.0}
            for q in questions]
    (folder / "answers.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


@pytest.fixture
def experiment(tmp_path, shared_data, monkeypatch):
    """Two runner units ('exp/base/seed-0', 'exp/lora/seed-0') with all 80 questions answered and judged."""
    monkeypatch.setenv(DATA_ENV, str(shared_data))
    questions = load_questions()
    scores = {}
    for label in ("base", "lora"):
        folder = tmp_path / "exp" / label / "seed-0" / "mt_bench"
        write_answers(folder, f"exp/{label}/seed-0", questions)
        scores[label] = judge_answer_file(folder / "answers.jsonl", ScriptedJudge("scripted-judge"), folder)
    return tmp_path / "exp", scores


def fastchat_gen_judgment(monkeypatch):
    """fastchat.llm_judge.gen_judgment, importable without the anthropic client it imports (unused here)."""
    monkeypatch.setitem(sys.modules, "anthropic", sys.modules.get("anthropic") or types.ModuleType("anthropic"))
    from fastchat.llm_judge import gen_judgment

    return gen_judgment


def test_fastchats_scripts_read_the_export(experiment, tmp_path, monkeypatch, capsys):
    source, scores = experiment
    out = tmp_path / "llm_judge"
    assert main(["mtbench", "export", str(source), "--fastchat", str(out)]) == 0
    bench = out / "data" / "mt_bench"
    assert sorted(path.name for path in (bench / "model_answer").iterdir()) == ["exp-base-seed-0.jsonl",
                                                                                 "exp-lora-seed-0.jsonl"]
    # gen_judgment.py's own loading and checks, as its __main__ runs them (cwd = FastChat's llm_judge folder)
    fc = fastchat_gen_judgment(monkeypatch)
    monkeypatch.chdir(out)
    questions = fc.load_questions("data/mt_bench/question.jsonl", None, None)
    model_answers = fc.load_model_answers("data/mt_bench/model_answer")
    ref_answers = fc.load_model_answers("data/mt_bench/reference_answer")
    judges = fc.make_judge_single("scripted-judge", fc.load_judge_prompts("data/judge_prompts.jsonl"))
    models = fc.get_model_list("data/mt_bench/model_answer")
    fc.check_data(questions, model_answers, ref_answers, models, judges)  # raises on a missing answer/reference
    matches = fc.make_match_single([q for q in questions if q["category"] not in fc.NEED_REF_CATS], models,
                                   model_answers, judges["default"])
    matches += fc.make_match_single([q for q in questions if q["category"] in fc.NEED_REF_CATS], models,
                                    model_answers, judges["math"], ref_answers)
    assert len(matches) == 160
    # show_result.py, unchanged, in a subprocess: its averages are ours
    shown = subprocess.run([sys.executable, "-m", "fastchat.llm_judge.show_result", "--bench-name", "mt_bench",
                            "--judge-model", "scripted-judge"], cwd=out, capture_output=True, text=True, check=True)
    average = shown.stdout.split("########## Average ##########")[1].split()
    for label in ("base", "lora"):
        assert float(average[average.index(f"exp-{label}-seed-0") + 1]) == pytest.approx(scores[label]["overall"],
                                                                                         abs=5e-6)
    first = shown.stdout.split("########## First turn ##########")[1].split("##########")[0].split()
    assert float(first[first.index("exp-base-seed-0") + 2]) == pytest.approx(scores["base"]["turn1"], abs=5e-6)


def test_a_second_export_keeps_other_models_judgments(experiment, tmp_path):
    source, _ = experiment
    out = tmp_path / "llm_judge"
    target = out / "data" / "mt_bench" / "model_judgment" / "scripted-judge_single.jsonl"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps({"question_id": 81, "model": "vicuna-13b", "judge": ["scripted-judge", "single-v1"],
                                  "user_prompt": "p", "judgment": "[[9]]", "score": 9, "turn": 1, "tstamp": 0}) + "\n")
    for _ in range(2):  # idempotent: the second export replaces our rows, keeps FastChat's
        assert main(["mtbench", "export", str(source), "--fastchat", str(out)]) == 0
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert sum(row["model"] == "vicuna-13b" for row in rows) == 1
    assert sum(row["model"] == "exp-lora-seed-0" for row in rows) == 160


def test_question_begin_end_are_fastchats_slice(shared_data, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(shared_data))
    questions = load_questions()
    assert select_questions(questions, None, 10, 25) == questions[10:25]  # gen_model_answer: questions[begin:end]
    assert select_questions(questions, None, None, 5) == questions[:5]
    assert [q["question_id"] for q in select_questions(questions, 2, 10, 25)] == [91, 101]  # then round-robin


def test_rows_from_before_references_joined_the_identity_export_with_the_rest(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(shared_data))
    folder = tmp_path / "run"
    write_answers(folder, "m/1", load_questions()[:2])
    identity = {"backend": "openai", "model": "gpt-4", "base_url": "https://api.openai.com/v1", "temperature": 0.0,
                "max_tokens": 2048, "prompts": ["single-v1"]}
    rows = [{"question_id": 81, "model": "m/1", "judge": ["gpt-4", "single-v1"], "user_prompt": "p", "judgment": "j",
             "score": score, "turn": turn, "tstamp": 0, "judge_identity": identity if old else
             {**identity, "reference": {"name": "gpt-4", "sha256": "0" * 64}}}
            for score, turn, old in ((7, 1, True), (5, 2, True), (6, 1, False), (4, 2, False))]
    (folder / "judgments").mkdir()
    (folder / "judgments" / "openai-gpt-4.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert main(["mtbench", "export", str(folder), "--fastchat", str(tmp_path / "fc")]) == 0
    files = sorted((tmp_path / "fc" / "data" / "mt_bench" / "model_judgment").iterdir())
    assert [file.name for file in files] == ["gpt-4_single.jsonl"]  # one judge, one file, FastChat's name
    exported = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert [(row["model"], row["score"]) for row in exported] == [("m-1", 7), ("m-1", 5), ("m-1", 6), ("m-1", 4)]
