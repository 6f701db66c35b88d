"""Judging options: --reference, --judge-repeats, --dry-run, newer OpenAI models, Azure OpenAI, the lazy hf: judge."""

from __future__ import annotations

import json
import statistics
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import FakeOpenAI

from owlore_bench.cli import main
from owlore_bench.errors import UserError
from owlore_bench.mtbench.cost import judging_plan
from owlore_bench.mtbench.judges import make_judge
from owlore_bench.mtbench.judges.base import Judge
from owlore_bench.mtbench.pipeline import judge_answer_file
from owlore_bench.mtbench.questions import load_questions, load_reference
from owlore_bench.paths import DATA_ENV

QUESTIONS = [{"question_id": 81, "category": "writing", "turns": ["Write a haiku.", "Make it sad."]},
             {"question_id": 111, "category": "math", "turns": ["What is 3 + 4?", "Double it."]}]


@pytest.fixture
def mt_data(tmp_path, shared_data, monkeypatch):
    """A data root with two questions (one needs a reference), FastChat's prompts and GPT-4 references."""
    root = tmp_path / "data" / "mt_bench"
    root.mkdir(parents=True)
    (root / "question.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    for name in ("judge_prompts.jsonl", "reference_answer_gpt-4.jsonl"):
        (root / name).write_text((shared_data / "mt_bench" / name).read_text())
    monkeypatch.setenv(DATA_ENV, str(root.parent))
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"question_id": q["question_id"], "answer_id": "a", "model_id": "m",
                                           "choices": [{"index": 0, "turns": ["one", "two"]}], "tstamp": 0})
                               + "\n" for q in QUESTIONS))
    return answers


class CyclingJudge(Judge):
    """Replies with ratings from `cycle`, one per request in order: a noisy judge."""

    backend = "cycling"

    def __init__(self, cycle: list[int]):
        super().__init__("cycling-judge")
        self.cycle, self.calls = cycle, 0

    def complete_many(self, requests: list[tuple[str, str]]) -> Iterator[tuple[int, str]]:
        for index, _ in enumerate(requests):
            self.calls += 1
            yield index, f"Rating: [[{self.cycle[(self.calls - 1) % len(self.cycle)]}]]"


def test_repeats_report_the_median_per_turn_and_the_judges_spread(mt_data, tmp_path):
    once = judge_answer_file(mt_data, CyclingJudge([4]), tmp_path / "out")
    assert once["overall"] == 4 and once["judge_repeats"] == 1 and once["judge_sd"] is None
    judge = CyclingJudge([2, 9, 6])  # asked in order (81 t1 r1, 81 t1 r2, 81 t2 r1, ...): 2 9 | 6 2 | 9 6 | 2 9
    scores = judge_answer_file(mt_data, judge, tmp_path / "out", repeats=3)
    assert judge.calls == 8  # repeat 0 is in the file already: only repeats 1 and 2 are asked for
    # medians of (4, 2, 9) (4, 6, 2) for question 81's turns, (4, 9, 6) (4, 2, 9) for 111's: 4 4 | 6 4
    assert (scores["turn1"], scores["turn2"], scores["overall"]) == (5, 4, 4.5)
    per_repeat = [4, (2 + 6 + 9 + 2) / 4, (9 + 2 + 6 + 9) / 4]  # the overall score of each repeat alone
    assert scores["judge_sd"] == pytest.approx(statistics.stdev(per_repeat))
    assert scores["judge_repeats"] == 3


def test_judge_repeats_zero_is_one_line(mt_data, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_code:  # argparse's own one-line error (type=positive_int)
        main(["mtbench", "judge", "--answers", str(mt_data), "--judge", "hf:tiny-llama", "--out",
              str(tmp_path / "o"), "--judge-repeats", "0"])
    assert exit_code.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "--judge-repeats/--judge_repeats: must be >= 1 (got 0)" in err and "\n" not in err


def test_another_reference_is_another_judge_and_its_own_file(mt_data, tmp_path):
    default = load_reference()
    assert default.name == "gpt-4" and len(default.sha256) == 64
    corrected = tmp_path / "refs.jsonl"
    rows = [json.loads(line) for line in default.path.read_text().splitlines()]
    rows[0]["choices"][0]["turns"][0] += " (corrected)"
    corrected.write_text("".join(json.dumps(row) + "\n" for row in rows))
    mine = load_reference(corrected)
    assert mine.sha256 != default.sha256
    first = judge_answer_file(mt_data, CyclingJudge([5]), tmp_path / "out")
    second = judge_answer_file(mt_data, CyclingJudge([5]), tmp_path / "out", reference=mine)
    assert first["judgments_file"] != second["judgments_file"]
    assert first["judge"]["reference"] == {"name": "gpt-4", "sha256": default.sha256}
    assert second["judge"]["reference"]["sha256"] == mine.sha256


def test_a_reference_without_a_needed_question_is_one_line(mt_data, tmp_path):
    partial = tmp_path / "partial.jsonl"
    partial.write_text(json.dumps({"question_id": 101, "model_id": "gpt-4",
                                   "choices": [{"index": 0, "turns": ["a", "b"]}]}) + "\n")
    with pytest.raises(UserError, match=r"partial.jsonl: no reference answer .* question\(s\) 111") as error:
        judge_answer_file(mt_data, CyclingJudge([5]), tmp_path / "out", reference=load_reference(partial))
    assert "\n" not in str(error.value)
    with pytest.raises(UserError, match="no reference answers named 'gpt-5' .*names there: gpt-4"):
        load_reference("gpt-5")


def test_dry_run_counts_with_the_judges_tokenizer_and_loads_no_model(mt_data, tmp_path, capsys):
    judge = make_judge("hf:tiny-llama", max_tokens=16)
    questions = load_questions()
    answers = [json.loads(line) for line in mt_data.read_text().splitlines()]
    plan = judging_plan(answers, questions, judge, load_reference(), tmp_path / "out", repeats=2)
    assert plan["requests"] == 8 and plan["max_reply_tokens"] == 8 * 16
    from owlore_bench.mtbench.judging import pending_requests
    from owlore_bench.mtbench.questions import load_judge_prompts

    todo = pending_requests(answers, questions, load_judge_prompts(), load_reference().answers, set())
    assert plan["prompt_tokens"] == 2 * sum(len(judge.prompt_ids(p.system, p.user)) for _, p in todo)
    assert judge._net is None  # counting needed the tokenizer only


class WordEncoding:
    """A stand-in tiktoken encoding (the real one downloads its tables): one token per word."""

    name = "o200k_base"

    def encode(self, text: str) -> list[str]:
        return text.split()


def test_dry_run_counts_openai_prompts_with_tiktoken_and_prices_them(mt_data, tmp_path, capsys, monkeypatch):
    fake = types.ModuleType("tiktoken")
    fake.encoding_for_model = lambda model: WordEncoding()
    monkeypatch.setitem(sys.modules, "tiktoken", fake)
    assert main(["mtbench", "judge", "--answers", str(mt_data), "--judge", "openai:gpt-4o", "--out",
                 str(tmp_path / "o"), "--dry-run", "--price-in", "2.5", "--price-out", "10"]) == 0
    out = capsys.readouterr().out
    answers = [json.loads(line) for line in mt_data.read_text().splitlines()]
    plan = judging_plan(answers, load_questions(), make_judge("openai:gpt-4o?api_key_env=none"), load_reference(),
                        tmp_path / "o")
    words = plan["prompt_tokens"]
    assert plan["counted_with"] == "tiktoken o200k_base" and plan["requests"] == 4
    assert f"prompt tokens: {words} (tiktoken o200k_base)" in out
    cost_in, cost_out = words * 2.5 / 1e6, 4 * 2048 * 10 / 1e6
    assert f"estimated cost: {cost_in:.4f} for prompts + at most {cost_out:.4f} for replies" in out
    assert not (tmp_path / "o" / "judgments").exists()  # nothing sent, nothing written


def test_dry_run_without_tiktoken_says_approximate(mt_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tiktoken", None)
    assert main(["mtbench", "judge", "--answers", str(mt_data), "--judge", "openai:gpt-4", "--out",
                 str(tmp_path / "o"), "--dry-run"]) == 0
    assert "approximate: characters / 4" in capsys.readouterr().out


class TokenFieldServer(FakeOpenAI):
    """A loopback server that, like OpenAI's for reasoning models, answers 400 to a request with max_tokens."""

    def refusal(self, body: dict) -> dict | None:
        """The error payload of a request this server refuses, or None."""
        if "max_tokens" in body:
            return {"error": {"message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
                                         "Use 'max_completion_tokens' instead.",
                              "type": "invalid_request_error", "param": "max_tokens"}}
        return None

    def handle(self, request) -> None:
        body = json.loads(request.rfile.read(int(request.headers["Content-Length"])))
        with self.lock:
            self.requests.append({"path": request.path, **body})
        refusal = self.refusal(body)
        if refusal:
            return self._send(request, 400, refusal)
        self._send(request, 200, {"id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
                                  "choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": "Rating: [[7]]"}}]})


@pytest.fixture
def token_server():
    pytest.importorskip("openai")
    server = TokenFieldServer()
    yield server
    server.close()


def test_reasoning_models_get_max_completion_tokens(token_server):
    judge = make_judge(token_server.spec().replace("openai:test-judge", "openai:o3-mini"), max_tokens=99)
    assert judge.complete("s", "u") == "Rating: [[7]]"
    assert len(token_server.requests) == 1 and token_server.requests[0]["max_completion_tokens"] == 99


def test_a_400_naming_max_tokens_is_retried_once_with_max_completion_tokens(token_server):
    judge = make_judge(token_server.spec(), max_tokens=99)  # a name that does not say it needs the new field
    assert judge.complete("s", "u") == "Rating: [[7]]"
    assert judge.complete("s", "u") == "Rating: [[7]]"
    assert ["max_tokens" in request for request in token_server.requests] == [True, False, False]


class ReasoningModelServer(TokenFieldServer):
    """Like OpenAI's chat completions for reasoning models: 400 to max_tokens, and 400 to any temperature but 1."""

    def refusal(self, body: dict) -> dict | None:
        if body.get("temperature", 1) != 1:
            return {"error": {"message": f"Unsupported value: 'temperature' does not support {body['temperature']} "
                                         f"with this model. Only the default (1) value is supported.",
                              "type": "invalid_request_error", "param": "temperature", "code": "unsupported_value"}}
        return super().refusal(body)


@pytest.fixture
def reasoning_server():
    pytest.importorskip("openai")
    server = ReasoningModelServer()
    yield server
    server.close()


@pytest.mark.parametrize("model", ["o1", "o1-mini", "o3", "o3-mini", "o4-mini", "gpt-5", "gpt-5-mini",
                                   "openai/O3-MINI"])
def test_reasoning_models_are_sent_no_temperature(reasoning_server, model):
    judge = make_judge(reasoning_server.spec().replace("openai:test-judge", f"openai:{model}"), max_tokens=99)
    assert judge.complete("s", "u") == "Rating: [[7]]"
    [request] = reasoning_server.requests  # accepted at once: no 400 and retry
    assert "temperature" not in request and request["max_completion_tokens"] == 99
    assert judge.identity["temperature"] == 1.0  # what the judgments were sampled at, recorded with them


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4.1-mini", "omni-judge", "llama-3-70b"])
def test_other_models_keep_fastchats_temperature_zero(fake_openai_server, model):
    judge = make_judge(fake_openai_server.spec().replace("openai:test-judge", f"openai:{model}"))
    judge.complete("s", "u")
    assert fake_openai_server.requests[-1]["temperature"] == 0 and judge.identity["temperature"] == 0.0


@pytest.fixture
def fake_openai_server():
    pytest.importorskip("openai")
    server = FakeOpenAI()
    yield server
    server.close()


def test_azure_openai_through_the_openai_backend(fake_azure, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key")
    endpoint = fake_azure.url.removesuffix("/v1")
    judge = make_judge(f"openai:gpt-4o?base_url={endpoint}&api_version=2024-06-01&deployment=judge-dep")
    assert judge.complete("SYSTEM", "USER") == "Rating: [[5]]"
    request = fake_azure.requests[-1]
    assert request["path"] == "/openai/deployments/judge-dep/chat/completions?api-version=2024-06-01"
    assert fake_azure.headers[-1]["api-key"] == "azure-key"
    assert judge.identity["deployment"] == "judge-dep" and judge.identity["api_version"] == "2024-06-01"
    with pytest.raises(UserError, match="deployment= is Azure OpenAI's and needs api_version="):
        make_judge(f"openai:gpt-4o?base_url={endpoint}&deployment=judge-dep")


class HeaderRecordingServer(FakeOpenAI):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.headers = []

    def handle(self, request) -> None:
        self.headers.append(dict(request.headers))
        super().handle(request)


@pytest.fixture
def fake_azure():
    pytest.importorskip("openai")
    server = HeaderRecordingServer()
    yield server
    server.close()


def test_hf_judge_loads_its_model_only_when_something_is_left_to_judge(mt_data, tmp_path):
    out = tmp_path / "out"
    first = make_judge("hf:tiny-llama", max_tokens=2)
    judge_answer_file(mt_data, first, out)
    assert first._net is not None  # it judged
    again = make_judge("hf:tiny-llama", max_tokens=2)
    scores = judge_answer_file(mt_data, again, out)
    assert again._net is None and scores["n_questions"] == 2  # all judged already: no model load
    assert Path(scores["judgments_file"]).is_file()
