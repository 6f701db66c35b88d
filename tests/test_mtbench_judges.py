"""Judge backends: specs, the openai: backend against a loopback HTTP server, the hf: backend on tiny-llama."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from owlore_bench.errors import UserError
from owlore_bench.mtbench.judges import judge_slug, make_judge, parse_spec
from owlore_bench.mtbench.judging import judge_answers
from owlore_bench.mtbench.questions import Reference

pytest.importorskip("openai")
from helpers import FakeOpenAI  # noqa: E402


@pytest.fixture
def fake_openai():
    servers = []

    def start(*args, **kwargs):
        servers.append(FakeOpenAI(*args, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.mark.parametrize("status", [500, 429, 503])
def test_a_server_error_is_retried_then_succeeds(fake_openai, status):
    server = fake_openai(script=[status, "Looks right. Rating: [[6]]"])
    judge = make_judge(server.spec(retries=2))
    assert judge.complete("SYSTEM", "USER") == "Looks right. Rating: [[6]]"
    assert len(server.requests) == 2
    request = server.requests[-1]
    assert request["path"] == "/v1/chat/completions" and request["model"] == "test-judge"
    assert request["messages"] == [{"role": "system", "content": "SYSTEM"}, {"role": "user", "content": "USER"}]
    assert request["temperature"] == 0 and request["max_tokens"] == 2048


def test_retries_are_bounded_and_the_error_names_the_url(fake_openai):
    server = fake_openai(script=[500, 500, 500, 500])
    judge = make_judge(server.spec(retries=2))
    with pytest.raises(UserError, match=f"at {server.url}: HTTP 500 after 3 tries"):
        judge.complete("s", "u")
    assert len(server.requests) == 3


def test_a_client_error_is_not_retried(fake_openai):
    server = fake_openai(script=[401])
    with pytest.raises(UserError, match="HTTP 401 after 1 tries"):
        make_judge(server.spec(retries=3)).complete("s", "u")
    assert len(server.requests) == 1


def test_the_timeout_fires(fake_openai):
    server = fake_openai(script=[("sleep", 5.0), ("sleep", 5.0)])
    judge = make_judge(server.spec(timeout=0.5, retries=1))
    started = time.perf_counter()
    with pytest.raises(UserError, match=r"no reply within 0.5 s \(2 tries\)"):
        judge.complete("s", "u")
    assert time.perf_counter() - started < 4.0  # two 0.5 s timeouts, never one 5 s reply
    assert len(server.requests) == 2


def test_a_missing_api_key_variable_is_named(monkeypatch):
    monkeypatch.delenv("MTBENCH_TEST_KEY", raising=False)
    with pytest.raises(UserError, match="environment variable MTBENCH_TEST_KEY is not set"):
        make_judge("openai:gpt-4?api_key_env=MTBENCH_TEST_KEY")
    monkeypatch.setenv("MTBENCH_TEST_KEY", "sk-test")
    assert make_judge("openai:gpt-4?api_key_env=MTBENCH_TEST_KEY").identity["base_url"] == "https://api.openai.com/v1"


def test_an_unreachable_url_is_named():
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    judge = make_judge(f"openai:m?base_url={url}&api_key_env=none&retries=1")
    with pytest.raises(UserError, match=f"at {url} is unreachable .2 tries."):
        judge.complete("s", "u")


def test_concurrency_is_bounded_and_every_reply_comes_back(fake_openai):
    server = fake_openai(default=lambda body: f"[[{body['messages'][-1]['content']}]]", hold_s=0.2)
    judge = make_judge(server.spec(concurrency=3))
    replies = dict(judge.complete_many([("s", str(k)) for k in range(7)]))
    assert replies == {k: f"[[{k}]]" for k in range(7)}
    assert 2 <= server.max_in_flight <= 3


QUESTIONS = [{"question_id": 81, "category": "writing", "turns": ["q1", "q2"]},
             {"question_id": 82, "category": "roleplay", "turns": ["r1", "r2"]}]
ANSWERS = [{"question_id": qid, "answer_id": "a", "model_id": "m", "choices": [{"index": 0, "turns": ["x", "y"]}],
            "tstamp": 0.0} for qid in (81, 82)]
PROMPTS = {name: {"name": name, "type": "single", "system_prompt": f"sys {name}", "output_format": "[[rating]]",
                  "prompt_template": "{question}|{answer}" if "multi" not in name else
                  "{question_1}|{answer_1}|{question_2}|{answer_2}"}
           for name in ("single-v1", "single-v1-multi-turn", "single-math-v1", "single-math-v1-multi-turn")}
NO_REFS = Reference("none", Path("none.jsonl"), "0" * 64, {})  # writing/roleplay questions need none


def test_judging_survives_a_reply_without_rating_and_resumes_after_a_failure(fake_openai, tmp_path):
    out = tmp_path / "judgments.jsonl"
    server = fake_openai(script=["no verdict here", "Rating: [[7]]", 401])
    with pytest.raises(UserError, match="HTTP 401"):
        judge_answers(ANSWERS, QUESTIONS, PROMPTS, NO_REFS, make_judge(server.spec(concurrency=1)), out)
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(row["score"] for row in kept) == [-1, 7]  # the unparsed reply is kept, scored -1
    rows = judge_answers(ANSWERS, QUESTIONS, PROMPTS, NO_REFS, make_judge(server.spec()), out)  # the server is back
    assert len(server.requests) == 3 + 2  # only the two missing judgments were asked for
    assert sorted((row["question_id"], row["turn"]) for row in rows) == [(81, 1), (81, 2), (82, 1), (82, 2)]
    assert {tuple(row["judge"]) for row in rows} == {("test-judge", "single-v1"),
                                                     ("test-judge", "single-v1-multi-turn")}
    assert {row["judge_identity"]["base_url"] for row in rows} == {server.url}
    assert judge_answers(ANSWERS, QUESTIONS, PROMPTS, NO_REFS, make_judge(server.spec()), out) == rows
    assert len(server.requests) == 5  # nothing left to judge


def test_a_judgments_file_of_another_judge_is_refused(fake_openai, tmp_path):
    server = fake_openai()
    out = tmp_path / "judgments.jsonl"
    judge_answers(ANSWERS[:1], QUESTIONS, PROMPTS, NO_REFS, make_judge(server.spec()), out)
    with pytest.raises(UserError, match="holds judgments by another judge"):
        judge_answers(ANSWERS, QUESTIONS, PROMPTS, NO_REFS, make_judge(server.spec(), max_tokens=64), out)


@pytest.mark.parametrize("spec, message", [
    ("gpt-4", "unknown backend 'gpt-4'; backends: openai, hf"),
    ("opanai:gpt-4", "Did you mean 'openai'?"),
    ("openai:", "no model name after 'openai:'"),
    ("openai:gpt-4?baseurl=http://x", "unknown option 'baseurl=http://x'; openai: takes base_url="),
    ("openai:gpt-4?timeout=soon", "option timeout='soon' must be a float"),
    ("hf:tiny-llama?device=tpu", "options are dtype=auto|bf16|fp32, device=auto|cpu|cuda"),
])
def test_bad_specs_are_one_line(spec, message):
    with pytest.raises(UserError, match=message.replace("?", r"\?").replace("|", r"\|")) as error:
        make_judge(spec)
    assert "\n" not in str(error.value)


def test_spec_parsing_and_slugs():
    assert parse_spec("openai:llama3:8b?base_url=http://127.0.0.1:11434/v1&api_key_env=none") == (
        "openai", "llama3:8b", {"base_url": "http://127.0.0.1:11434/v1", "api_key_env": "none"})
    base = {"backend": "openai", "model": "gpt-4", "base_url": "https://api.openai.com/v1", "max_tokens": 2048}
    assert judge_slug(base) == "openai-gpt-4"
    local = judge_slug({**base, "model": "Qwen/Qwen2.5-7B", "base_url": "http://127.0.0.1:8000/v1"})
    assert local.startswith("openai-Qwen-Qwen2.5-7B-") and local != judge_slug({**base, "model": "Qwen/Qwen2.5-7B"})
    assert judge_slug({**base, "max_tokens": 512}) == "openai-gpt-4-max512"


def test_hf_judge_on_tiny_llama():
    judge = make_judge("hf:tiny-llama?batch_size=2", max_tokens=6)
    assert judge.identity == {"backend": "hf", "model": "tiny-llama", "base_url": None, "temperature": 0.0,
                              "max_tokens": 6, "prompt_format": "plain: system\\n\\nuser"}
    # tiny-llama's byte tokenizer has no chat template: the documented plain "system\n\nuser" text, with BOS
    assert judge.prompt_ids("SYS", "USER") == judge.tokenizer("SYS\n\nUSER")["input_ids"]
    requests = [("You are a judge.", "Rate this answer: 42."), ("sys", "a much longer user message " * 5), ("s", "u")]
    alone = [judge.complete(system, user) for system, user in requests]
    batched = dict(judge.complete_many(requests))
    assert [batched[k] for k in range(3)] == alone  # greedy: batching changes nothing
    assert all(isinstance(reply, str) and reply for reply in alone)


def test_hf_prefill_starts_the_reply_with_the_rating_format_and_changes_the_identity():
    plain = make_judge("hf:tiny-llama", max_tokens=3)
    prefilled = make_judge("hf:tiny-llama?prefill=rating", max_tokens=3)
    reply = prefilled.complete("You are a judge.", "Rate this.")
    assert reply.startswith("Rating: [[")
    base_ids, prefilled_ids = plain.prompt_ids("s", "u"), prefilled.prompt_ids("s", "u")
    assert prefilled_ids[: len(base_ids)] == base_ids and len(prefilled_ids) == len(base_ids) + len("Rating: [[")
    assert judge_slug(prefilled.identity) == "hf-tiny-llama-prefill-max3" != judge_slug(plain.identity)
    with pytest.raises(UserError, match="prefill=none\\|rating"):
        make_judge("hf:tiny-llama?prefill=verdict", max_tokens=3)
