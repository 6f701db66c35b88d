"""`owlore-bench mtbench` and run_mtbench as users run them: FastChat files both ways, resume, one-line errors."""

from __future__ import annotations

import json
import socket

import pytest
from conftest import run_cli
from helpers import FakeOpenAI

from owlore_bench.cli import build_parser, main
from owlore_bench.mtbench import generate
from owlore_bench.mtbench.pipeline import MTBenchConfig, run_mtbench
from owlore_bench.paths import DATA_ENV

pytest.importorskip("openai")


@pytest.fixture
def server():
    # The fake judge grades turn 1 with 8 and turn 2 with 6, except question 111's turn 2, which gets no rating.
    def grade(body):
        user = body["messages"][-1]["content"]
        if "### User:\nWhat is 3 + 4?" in user and "Assistant A" in user:
            return "I cannot decide."
        return "Rating: [[6]]" if "### Assistant A:" in user else "Rating: [[8]]"

    fake = FakeOpenAI(default=grade)
    yield fake
    fake.close()


@pytest.fixture
def mt_data(tmp_path, shared_data, monkeypatch):
    """A data root whose question.jsonl holds 3 short questions with real ids; FastChat's prompts and references."""
    root = tmp_path / "data"
    (root / "mt_bench").mkdir(parents=True)
    questions = [{"question_id": 81, "category": "writing", "turns": ["Write a haiku.", "Make it sad."]},
                 {"question_id": 111, "category": "math", "turns": ["What is 3 + 4?", "Double it."]},
                 {"question_id": 141, "category": "stem", "turns": ["What is an atom?", "And an ion?"]}]
    (root / "mt_bench" / "question.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    for name in ("judge_prompts.jsonl", "reference_answer_gpt-4.jsonl"):
        (root / "mt_bench" / name).write_text((shared_data / "mt_bench" / name).read_text())
    monkeypatch.setenv(DATA_ENV, str(root))
    return root


def fastchat_answer_file(path):
    """An answers file as fastchat/llm_judge/gen_model_answer.py writes it (shortuuid ids, one line per question)."""
    rows = [{"question_id": 81, "answer_id": "ZQo9VYgJ5p9CC8m2yRNcqS", "model_id": "vicuna-7b-v1.3",
             "choices": [{"index": 0, "turns": ["Rain on the window.", "Alone, rain on the window."]}],
             "tstamp": 1687221280.2},
            {"question_id": 111, "answer_id": "8ReCHkkh7s2nYSzbCYcWbA", "model_id": "vicuna-7b-v1.3",
             "choices": [{"index": 0, "turns": ["3 + 4 = 7.", "Doubled, it is 14."]}], "tstamp": 1687221301.7},
            {"question_id": 141, "answer_id": "BdDqvJVnXL3hBpKvGwU5mX", "model_id": "vicuna-7b-v1.3",
             "choices": [{"index": 0, "turns": ["The smallest unit of matter.", "A charged atom."]}],
             "tstamp": 1687221322.9}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_a_fastchat_answer_file_is_judged_and_fastchat_reads_our_judgments(mt_data, server, tmp_path, capsys):
    answers = fastchat_answer_file(tmp_path / "vicuna-7b-v1.3.jsonl")
    spec = server.spec()
    assert main(["mtbench", "judge", "--answers", str(answers), "--judge", spec, "--out", str(tmp_path / "out")]) == 0
    scores = json.loads(next((tmp_path / "out").glob("scores-*.json")).read_text())
    # 3 questions: turn 1 all 8; turn 2: 6, 6 and one unparsed → overall (3*8 + 2*6) / 5
    assert (scores["turn1"], scores["turn2"], scores["overall"]) == (8, 6, pytest.approx(36 / 5))
    assert scores["categories"] == {"writing": 7, "math": 8, "stem": 7} and scores["n_unparsed"] == 1
    assert scores["model_id"] == "vicuna-7b-v1.3" and scores["judge"]["base_url"] == server.url
    asked = {r["messages"][-1]["content"].split("[Question]\n")[-1][:14]: r["messages"][-1]["content"]
             for r in server.requests if "[Question]" in r["messages"][-1]["content"]}
    assert "[The Start of Reference Answer]" in asked["What is 3 + 4?"]  # math is graded against the reference
    assert "Reference" not in asked["Write a haiku."]
    # FastChat's show_result.py, mode single: pandas over the judgments file, -1 dropped, mean per (model, turn)
    import pandas as pd

    judgments = next((tmp_path / "out" / "judgments").glob("*.jsonl"))
    frame = pd.read_json(judgments, lines=True)[["model", "score", "turn"]]
    frame = frame[frame["score"] != -1]
    assert frame[frame["turn"] == 1].groupby(["model", "turn"]).mean()["score"].iloc[0] == scores["turn1"]
    assert frame[["model", "score"]].groupby(["model"]).mean()["score"].iloc[0] == pytest.approx(scores["overall"])
    first = json.loads(judgments.read_text().splitlines()[0])  # common.py load_single_model_judgments
    assert len(tuple(first["judge"])) == 2
    assert {"question_id", "model", "user_prompt", "judgment", "score", "turn", "tstamp"} <= set(first)
    out = capsys.readouterr().out
    assert "########## First turn ##########" in out and "vicuna-7b-v1.3" in out
    assert main(["mtbench", "show", str(tmp_path / "out")]) == 0
    assert "7.2000" in capsys.readouterr().out


def test_answer_then_judge_then_rerun_judges_nothing(mt_data, server, tmp_path, capsys):
    out = str(tmp_path / "tiny")
    assert main(["mtbench", "answer", "--model", "tiny-llama", "--out", out, "--limit", "2", "--max_new_tokens",
                 "4", "--batch_size", "2"]) == 0
    answers = (tmp_path / "tiny" / "answers.jsonl").read_text()
    assert [json.loads(line)["model_id"] for line in answers.splitlines()] == ["tiny-llama"] * 2
    judge = ["mtbench", "judge", "--answers", f"{out}/answers.jsonl", "--judge", server.spec(), "--out", out]
    assert main(judge) == 0 and len(server.requests) == 4
    assert main(judge) == 0 and len(server.requests) == 4  # resumed: nothing re-judged
    assert (tmp_path / "tiny" / "answers.jsonl").read_text() == answers


def test_unreachable_judge_is_one_line_and_keeps_everything(mt_data, tmp_path, capsys):
    answers = fastchat_answer_file(tmp_path / "answers.jsonl")
    before = answers.read_text()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    spec = f"openai:m?base_url={url}&api_key_env=none&retries=0"
    assert main(["mtbench", "judge", "--answers", str(answers), "--judge", spec, "--out", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err
    assert f"{url} is unreachable" in error and len(error.strip().splitlines()) == 1
    assert answers.read_text() == before


def _write(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


@pytest.mark.parametrize("bad, expected", [
    ({"question_id": 2, "turns": ["a", "b"]}, "line 2: question has no 'category'"),
    ({"question_id": 2, "category": "cooking", "turns": ["a", "b"]}, "question 2 has unknown category 'cooking'"),
])
def test_bad_question_file_is_one_line(tmp_path, monkeypatch, capsys, bad, expected):
    _write(tmp_path / "mt_bench" / "question.jsonl", [{"question_id": 1, "category": "math", "turns": ["a", "b"]}, bad])
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert main(["mtbench", "answer", "--model", "tiny-llama", "--out", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err
    assert expected in error and len(error.strip().splitlines()) == 1


def test_answers_for_other_questions_are_one_line(tmp_path, monkeypatch, capsys):
    _write(tmp_path / "mt_bench" / "question.jsonl", [{"question_id": 1, "category": "math", "turns": ["a", "b"]}])
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    answers = _write(tmp_path / "answers.jsonl", [{"question_id": 5001, "answer_id": "a", "model_id": "m", "tstamp": 0,
                                                   "choices": [{"index": 0, "turns": ["x", "y"]}]}])
    assert main(["mtbench", "judge", "--answers", str(answers), "--judge", "hf:tiny-llama", "--out", "o"]) == 2
    error = capsys.readouterr().err
    assert "answer for question_id 5001 (model m) matches no question" in error and len(error.splitlines()) == 1


def test_missing_data_folder_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "nowhere"))
    assert main(["mtbench", "answer", "--model", "tiny-llama", "--out", str(tmp_path / "o")]) == 2
    assert "MT-Bench data not found" in capsys.readouterr().err


@pytest.mark.parametrize("spec, expected", [
    ("gpt-4", "unknown backend 'gpt-4'; backends: openai, hf"),
    ("openai:gpt-4?api_key_env=MTBENCH_NO_SUCH_KEY", "environment variable MTBENCH_NO_SUCH_KEY is not set"),
])
def test_bad_judge_is_one_line_in_a_real_subprocess(mt_data, tmp_path, spec, expected):
    answers = fastchat_answer_file(tmp_path / "answers.jsonl")
    done = run_cli("mtbench", "judge", "--answers", str(answers), "--judge", spec, "--out", str(tmp_path / "o"),
                   env={DATA_ENV: str(mt_data)})
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize("action", ["answer", "judge", "show"])
def test_every_action_has_help_with_an_example(action, capsys):
    with pytest.raises(SystemExit):
        main(["mtbench", action, "--help"])
    text = capsys.readouterr().out
    assert f"owlore-bench mtbench {action}" in text.split("examples:")[1]


def test_underscore_spellings():
    args = build_parser().parse_args(["mtbench", "answer", "--out", "o", "--batch_size", "2", "--max_new_tokens", "9"])
    assert (args.batch_size, args.max_new_tokens) == (2, 9)
    args = build_parser().parse_args(["mtbench", "judge", "--answers", "a", "--judge", "hf:x", "--out", "o",
                                      "--judge_max_tokens", "7"])
    assert args.judge_max_tokens == 7


def test_run_mtbench_resumes_and_a_new_judge_rejudges_without_regenerating(mt_data, tmp_path, monkeypatch):
    from owlore_bench.models import tiny_llama

    model, tokenizer = tiny_llama()
    settings = {"judge": "hf:tiny-llama", "limit": 2, "max_new_tokens": 3, "judge_max_tokens": 3}
    scores = run_mtbench(model, tokenizer, tmp_path / "unit", settings, model_id="lora", prompt_format="plain")
    folder = tmp_path / "unit" / "mt_bench"
    assert scores["n_valid"] + scores["n_unparsed"] == 4 and scores["judge_slug"] == "hf-tiny-llama-max3"
    assert json.loads((folder / "scores-hf-tiny-llama-max3.json").read_text()) == scores
    answers = (folder / "answers.jsonl").read_text()

    def must_not_decode(*args, **kwargs):
        raise AssertionError("a rerun decoded something")

    real_decode = generate.decode_batch
    monkeypatch.setattr(generate, "decode_batch", must_not_decode)
    again = run_mtbench(model, tokenizer, tmp_path / "unit", MTBenchConfig(**settings), model_id="lora",
                        prompt_format="plain")
    assert {k: v for k, v in again.items() if k != "judge_wall_s"} == \
        {k: v for k, v in scores.items() if k != "judge_wall_s"}
    monkeypatch.setattr(generate, "decode_batch", real_decode)  # (the hf judge decodes through it)
    other = run_mtbench(model, tokenizer, tmp_path / "unit", {**settings, "judge_max_tokens": 2}, model_id="lora",
                        prompt_format="plain")
    assert other["judge_slug"] == "hf-tiny-llama-max2"
    assert len((folder / "judgments" / "hf-tiny-llama-max2.jsonl").read_text().splitlines()) == 4
    assert len((folder / "judgments" / "hf-tiny-llama-max3.jsonl").read_text().splitlines()) == 4
    assert (folder / "answers.jsonl").read_text() == answers  # answers were not regenerated


def test_mtbench_config_rejects_a_bad_judge_in_one_line():
    from owlore_bench.config import parse
    from owlore_bench.errors import UserError

    with pytest.raises(UserError, match="mt_bench.judge: .*unknown backend 'gpt4'"):
        parse(MTBenchConfig, {"judge": "gpt4:x"}, "mt_bench")


def _judged(mt_data, server, tmp_path):
    """A judged FastChat answer file: (judge command, judgments file), 6 judgments (3 questions x 2 turns)."""
    answers = fastchat_answer_file(tmp_path / "vicuna-7b-v1.3.jsonl")
    judge = ["mtbench", "judge", "--answers", str(answers), "--judge", server.spec(), "--out", str(tmp_path / "out")]
    assert main(judge) == 0
    (judgments,) = (tmp_path / "out" / "judgments").glob("*.jsonl")
    return judge, judgments


def _insert(path, line_number, text):
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:line_number - 1]) + text + "".join(lines[line_number - 1:]))


def test_show_reads_past_a_blank_line_and_never_writes(mt_data, server, tmp_path, capsys):
    _, judgments = _judged(mt_data, server, tmp_path)
    capsys.readouterr()
    assert main(["mtbench", "show", str(judgments)]) == 0
    clean = capsys.readouterr().out.replace(str(judgments), "F")
    _insert(judgments, 4, "\n")
    before = judgments.read_bytes()
    assert main(["mtbench", "show", str(judgments)]) == 0
    assert capsys.readouterr().out.replace(str(judgments), "F") == clean  # all 6 judgments scored, not 3
    assert judgments.read_bytes() == before  # a read-only command wrote nothing


def test_judge_keeps_every_judgment_after_a_blank_line_and_asks_for_none_again(mt_data, server, tmp_path):
    judge, judgments = _judged(mt_data, server, tmp_path)
    asked = len(server.requests)
    _insert(judgments, 3, "\n")
    assert main(judge) == 0
    assert len(server.requests) == asked  # nothing re-judged (with an openai: judge these are paid calls)
    assert len([line for line in judgments.read_text().splitlines() if line.strip()]) == 6


@pytest.mark.parametrize("action", ["show", "judge"])
def test_a_bad_line_inside_a_judgments_file_is_one_line_and_writes_nothing(mt_data, server, tmp_path, capsys, action):
    judge, judgments = _judged(mt_data, server, tmp_path)
    asked = len(server.requests)
    lines = judgments.read_text().splitlines(keepends=True)
    # two files concatenated without a trailing newline: line 3 holds two records
    judgments.write_text("".join(lines[:2]) + lines[2].rstrip("\n") + "".join(lines[3:]))
    before = judgments.read_bytes()
    capsys.readouterr()
    assert main(judge if action == "judge" else ["mtbench", "show", str(judgments)]) == 2
    error = capsys.readouterr().err
    assert f"{judgments} line 3: not valid JSON" in error and len(error.strip().splitlines()) == 1
    assert judgments.read_bytes() == before and len(server.requests) == asked


def test_answer_resumes_after_a_torn_last_line(mt_data, tmp_path):
    out = tmp_path / "tiny"
    answer = ["mtbench", "answer", "--model", "tiny-llama", "--out", str(out), "--limit", "2", "--max_new_tokens", "2"]
    assert main(answer) == 0
    answers = out / "answers.jsonl"
    first, second = answers.read_text().splitlines(keepends=True)
    answers.write_text(first + second[: len(second) // 2])  # killed mid-write of the second answer
    assert main(answer) == 0
    rows = [json.loads(line) for line in answers.read_text().splitlines()]
    assert [row["question_id"] for row in rows] == sorted(json.loads(line)["question_id"] for line in (first, second))


def test_answer_in_fp16_says_on_cpu_that_it_is_meant_for_cuda(mt_data, tmp_path, monkeypatch, capsys):
    import owlore_bench.models as models

    loaded = []
    real = models.load_model

    def recording(name, dtype="auto", device="auto"):
        model, tokenizer = real(name, dtype=dtype, device=device)
        loaded.append(next(model.parameters()).dtype)
        return model, tokenizer

    monkeypatch.setattr(models, "load_model", recording)
    assert main(["mtbench", "answer", "--model", "tiny-llama", "--dtype", "fp16", "--device", "cpu", "--limit", "1",
                 "--max-new-tokens", "3", "--out", str(tmp_path / "fp16")]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "fp16" in line]
    assert len(notes) == 1 and "meant for CUDA" in notes[0] and str(loaded) == "[torch.float16]"
    assert len((tmp_path / "fp16" / "answers.jsonl").read_text().splitlines()) == 1
