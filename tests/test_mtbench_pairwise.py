"""MT-Bench pairwise judging against FastChat's own code: prompts and rows (common.py play_a_match_pair), verdicts
(run_judge_pair), both answer orders, win / tie / loss (show_result.py on our exported file), the bootstrap
interval, one-line errors, the CLI (dry run, resume) and the runner's mt_bench.mode."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from collections.abc import Iterator

import numpy as np
import pytest
import yaml
from conftest import TINY_RECORDS

from owlore_bench.cli import main
from owlore_bench.errors import UserError
from owlore_bench.mtbench import pipeline
from owlore_bench.mtbench.judges.base import Judge
from owlore_bench.mtbench.pairwise import (
    judge_pairs,
    make_matches,
    pair_identity,
    pair_prompt_name,
    parse_verdict,
    pending_games,
    play_games,
)
from owlore_bench.mtbench.questions import load_judge_prompts, load_questions, load_reference, select_questions
from owlore_bench.paths import DATA_ENV
from owlore_bench.reporting.mt_bench_pairwise import pairwise_table, rate
from owlore_bench.results import read_jsonl

pytest.importorskip("fastchat")
pytest.importorskip("pandas")


def verdict_of(user: str) -> str:
    """A scripted judge reply that depends on the prompt: all four verdicts occur, and the orders often disagree."""
    return ["Assistant A is better. [[A]]", "[[B]]", "A tie: [[C]]", "I cannot tell."][sum(map(ord, user)) % 4]


class ScriptedJudge(Judge):
    """Replies with `reply(user)`, last request first (as a concurrent judge may), and records every request."""

    backend = "scripted"

    def __init__(self, model: str = "gpt-4", reply=verdict_of):
        super().__init__(model)
        self.reply, self.requests = reply, []

    def complete_many(self, requests: list[tuple[str, str]]) -> Iterator[tuple[int, str]]:
        self.requests += requests
        for index, (_, user) in reversed(list(enumerate(requests))):
            yield index, self.reply(user)


@pytest.fixture
def data(shared_data, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(shared_data))
    return shared_data


@pytest.fixture
def fastchat(monkeypatch):
    """fastchat.llm_judge.common with its OpenAI call replaced: records (system, user) and answers state['reply']."""
    monkeypatch.setitem(sys.modules, "anthropic", sys.modules.get("anthropic") or types.ModuleType("anthropic"))
    from fastchat.llm_judge import common

    state = {"reply": verdict_of, "sent": []}

    def chat_completion_openai(model, conv, temperature, max_tokens, api_dict=None):
        system, user = (message["content"] for message in conv.to_openai_api_messages())
        state["sent"].append((system, user))
        return state["reply"](user)

    monkeypatch.setattr(common, "chat_completion_openai", chat_completion_openai)
    return common, state


def answer(model: str, qid: int, turns: int = 2) -> dict:
    return {"question_id": qid, "answer_id": f"{model}{qid}", "model_id": model, "tstamp": 0.0,
            "choices": [{"index": 0, "turns": [f"{model} on {{q{qid}}} turn {k}" * (1 + qid % 3)
                                               for k in range(1, turns + 1)]}]}


def write_answers(path, model: str, questions: list[dict]):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(answer(model, q["question_id"])) + "\n" for q in questions))
    return path


@pytest.mark.parametrize("qid", [81, 111])  # writing: pair-v2; math: pair-math-v1 with the GPT-4 reference
@pytest.mark.parametrize("turn", [1, 2])
def test_prompts_and_rows_equal_fastchats_play_a_match_pair(data, fastchat, tmp_path, qid, turn):
    common, state = fastchat
    question = next(q for q in load_questions() if q["question_id"] == qid)
    prompts, reference = load_judge_prompts(), load_reference()
    answers = {model: {qid: answer(model, qid)} for model in ("alpha", "beta")}
    template = prompts[pair_prompt_name(question["category"], turn)]
    ref = {"choices": [{"turns": reference.answers[qid]}]} if question["category"] == "math" else None
    match = common.MatchPair(dict(question), "alpha", "beta", answers["alpha"][qid], answers["beta"][qid],
                             common.Judge("gpt-4", template, ref_based=ref is not None, multi_turn=turn == 2),
                             ref_answer=ref, multi_turn=turn == 2)
    expected = common.play_a_match_pair(match, output_file=None)
    judge = ScriptedJudge()
    games = [game for game in pending_games([question], answers, [("alpha", "beta")], prompts, reference.answers,
                                            set()) if game[0]["turn"] == turn]
    (row,) = play_games(games, judge, pair_identity(judge, reference), prompts, tmp_path / "pair.jsonl")
    assert judge.requests == state["sent"]  # system + user of game 1 (alpha as A), then game 2 (beta as A)
    assert ("Reference" in state["sent"][0][1]) == (ref is not None)
    ours = {key: value for key, value in row.items() if key not in ("tstamp", "judge_identity")}
    assert ours == {key: value for key, value in json.loads(json.dumps(expected)).items() if key != "tstamp"}
    assert json.loads((tmp_path / "pair.jsonl").read_text())["g2_judgment"] == row["g2_judgment"]


VERDICTS = ["[[A]]", "Assistant B wins: [[B]]", "[[C]]", "[[B]] is wrong, so [[A]]", "[[C]] or maybe [[B]]",
            "[A]", "[[a]]", "[[ A ]]", "", "$ERROR$"]
TWO_SCORES = ["[[7, 7.05]]", "[8,3]", "Scores: [[2,9]]", "[[10,10]]", "[[7.5, 7.3]] then [[1,9]]", "none"]


@pytest.mark.parametrize("output_format, judgment", [("[[A]]", text) for text in VERDICTS]
                         + [("[[rating_a,rating_b]]", text) for text in TWO_SCORES])
def test_verdicts_are_read_as_fastchats_run_judge_pair_reads_them(fastchat, output_format, judgment):
    common, state = fastchat
    state["reply"] = lambda user: judgment
    template = {"name": "t", "type": "pairwise", "system_prompt": "s", "prompt_template": "{question}{answer_a}"
                "{answer_b}", "output_format": output_format}
    one = {"choices": [{"turns": ["an answer"]}]}
    winner, _, _ = common.run_judge_pair({"turns": ["q"]}, one, one, common.Judge("gpt-4", template), None)
    assert parse_verdict(judgment, output_format) == winner


def test_both_orders_are_played_and_a_position_biased_judge_only_ties(data, tmp_path):
    questions = select_questions(load_questions(), 8)  # one per category: math/reasoning/coding get references
    files = [write_answers(tmp_path / f"{model}.jsonl", model, questions) for model in ("alpha", "beta")]
    judge = ScriptedJudge(reply=lambda user: "[[A]]")  # always the answer shown first
    result = judge_pairs(files, judge, tmp_path, mode="pairwise-all", baseline=None, reference=load_reference())
    assert len(result["rows"]) == 16 and len(judge.requests) == 32 and result["judged"] == 16
    for row in result["rows"]:
        alpha, beta = answer("alpha", row["question_id"])["choices"][0]["turns"], \
            answer("beta", row["question_id"])["choices"][0]["turns"]
        shown_first = "[The Start of Assistant A's Answer]\n" if row["turn"] == 1 else "### Assistant A:\n"
        assert shown_first + alpha[0] in row["g1_user_prompt"] and shown_first + beta[0] in row["g2_user_prompt"]
        assert (row["g1_winner"], row["g2_winner"]) == ("model_1", "model_2")
    (line,) = pairwise_table(result["rows"]).to_dict("records")
    assert (line["wins"], line["ties"], line["losses"], line["tie"]) == (0, 16, 0, 100.0)  # FastChat: inconsistent
    assert result["path"] == tmp_path / "mt_bench_pairwise" / "scripted-gpt-4_pair.jsonl"


def test_a_rerun_plays_only_the_missing_games(data, tmp_path):
    questions = select_questions(load_questions(), 4)
    files = [write_answers(tmp_path / f"{model}.jsonl", model, questions) for model in ("alpha", "beta", "gamma")]
    options = {"mode": "pairwise-baseline", "baseline": "gamma", "reference": load_reference()}
    first = judge_pairs(files, ScriptedJudge(), tmp_path, **options)
    assert len(first["rows"]) == 2 * 4 * 2  # (alpha, gamma), (beta, gamma) x 4 questions x 2 turns
    lines = first["path"].read_text().splitlines()
    first["path"].write_text("\n".join(lines[:-3]) + "\n")  # three games lost
    again = ScriptedJudge()
    second = judge_pairs(files, again, tmp_path, **options)
    assert len(again.requests) == 6 and second["judged"] == 3 and len(second["rows"]) == 16
    judge_pairs(files, (idle := ScriptedJudge()), tmp_path, **options)
    assert idle.requests == []
    other = [{**row, "judge_identity": {**row["judge_identity"], "max_tokens": 7}} for row in read_jsonl(first["path"])]
    first["path"].write_text("".join(json.dumps(row) + "\n" for row in other))
    with pytest.raises(UserError, match="holds judgments by another judge"):  # one file, one judge identity
        judge_pairs(files, ScriptedJudge(), tmp_path, **options)


def test_matches_are_fastchats_and_seeds_play_their_own_seed():
    models = ["a", "b", "c"]
    assert make_matches(models, "pairwise-all") == [("a", "b"), ("a", "c"), ("b", "c")]  # make_match_all_pairs
    assert make_matches(models, "pairwise-baseline", "b") == [("a", "b"), ("c", "b")]  # make_match
    runner = ["x/base/seed-0", "x/full_ft/seed-0", "x/full_ft/seed-1", "x/lora/seed-0", "x/lora/seed-1"]
    assert make_matches(runner, "pairwise-baseline", "full_ft") == [
        ("x/base/seed-0", "x/full_ft/seed-0"), ("x/base/seed-0", "x/full_ft/seed-1"),
        ("x/lora/seed-0", "x/full_ft/seed-0"), ("x/lora/seed-1", "x/full_ft/seed-1")]


@pytest.fixture
def judged_experiment(data, tmp_path):
    """An experiment folder: three runner units' answers (16 questions, every category) judged pairwise-all."""
    questions = select_questions(load_questions(), 16)
    files = [write_answers(tmp_path / "exp" / label / "seed-0" / "mt_bench" / "answers.jsonl", f"exp/{label}/seed-0",
                           questions) for label in ("alpha", "beta", "full_ft")]
    result = judge_pairs(files, ScriptedJudge(), tmp_path / "exp", mode="pairwise-all", baseline=None,
                         reference=load_reference())
    return tmp_path / "exp", result


def fastchat_show_result(folder, *args: str) -> dict[str, tuple[int, int, int, float]]:
    """show_result.py, unchanged, in a subprocess: {model: (win, loss, tie, win_rate)} as it prints them."""
    shown = subprocess.run([sys.executable, "-m", "fastchat.llm_judge.show_result", "--bench-name", "mt_bench",
                            "--judge-model", "gpt-4", *args], cwd=folder, capture_output=True, text=True, check=True)
    rows = [line.split() for line in shown.stdout.splitlines()]
    return {row[0]: (int(row[1]), int(row[2]), int(row[3]), float(row[4])) for row in rows
            if len(row) == 7 and row[0].startswith("exp-")}


@pytest.mark.parametrize("mode", ["pairwise-baseline", "pairwise-all"])
def test_win_tie_loss_are_what_fastchats_show_result_prints_of_our_export(judged_experiment, tmp_path, mode):
    source, result = judged_experiment
    assert main(["mtbench", "export", str(source), "--fastchat", str(tmp_path / "fc")]) == 0
    exported = tmp_path / "fc" / "data" / "mt_bench" / "model_judgment" / "gpt-4_pair.jsonl"
    assert {row["model_1"] for row in read_jsonl(exported)} == {"exp-alpha-seed-0", "exp-beta-seed-0"}
    baseline = ["--baseline-model", "exp-full_ft-seed-0"] if mode == "pairwise-baseline" else []
    theirs = fastchat_show_result(tmp_path / "fc", "--mode", mode, *baseline)
    table = pairwise_table(result["rows"])
    assert table["errors"].sum() > 0 and table["ties"].sum() > 0  # dropped games and ties are both exercised
    ours: dict[str, list[int]] = {}
    for line in table.to_dict("records"):
        if baseline and line["versus"] != "full_ft":
            continue
        for name, (win, loss) in ((line["model"], ("wins", "losses")), (line["versus"], ("losses", "wins"))):
            counts = ours.setdefault(f"exp-{name}-seed-0", [0, 0, 0])
            counts[0], counts[1], counts[2] = counts[0] + line[win], counts[1] + line[loss], counts[2] + line["ties"]
        if baseline:
            assert theirs[f"exp-{line['model']}-seed-0"][3] == pytest.approx(line["win"] / 100, abs=1e-6)
    if baseline:
        del ours["exp-full_ft-seed-0"]  # show_result removes the baseline's own row
    assert {name: tuple(counts) for name, counts in ours.items()} == {name: row[:3] for name, row in theirs.items()}


def test_the_interval_resamples_questions_with_all_their_games():
    # 20 questions, two games each that always agree (won twice or lost twice): the games are not independent
    wins, games = np.repeat([2.0, 0.0], [8, 12]), np.full(20, 2.0)
    point, low, high = rate(wins, games, n_boot=4000, seed=1)
    rng = np.random.default_rng(7)  # an independent percentile bootstrap over questions
    drawn = rng.integers(0, 20, size=(4000, 20))
    expected = np.percentile(100 * wins[drawn].sum(axis=1) / games[drawn].sum(axis=1), [2.5, 97.5])
    assert point == 40.0 and (low, high) == pytest.approx(expected, abs=5.01)  # the rates step by 5 points
    per_game = np.repeat([1.0, 0.0], [16, 24])  # the same 40 games taken as independent: too narrow
    game_draws = np.percentile(100 * per_game[rng.integers(0, 40, size=(4000, 40))].mean(axis=1), [2.5, 97.5])
    assert high - low > 1.25 * (game_draws[1] - game_draws[0])
    assert np.isnan(rate(np.array([1.0]), np.array([2.0]))[1])  # one question: no interval


@pytest.mark.parametrize("extra, expected", [
    ([], "missing question ids: {b} (beta): 81, 91"),
    (["--judge-repeats", "3"], "--judge-repeats 3: applies to --mode single"),
    (["--baseline", "delta", "--mode", "pairwise-baseline"],
     "baseline 'delta' (--baseline, mt_bench.baseline): no model of that row or id"),
])
def test_bad_pairwise_input_is_one_line(data, tmp_path, capsys, extra, expected):
    questions = select_questions(load_questions(), 5)
    a = write_answers(tmp_path / "a.jsonl", "alpha", questions)
    b = write_answers(tmp_path / "b.jsonl", "beta", questions[2:] if not extra else questions)
    command = ["mtbench", "judge", "--mode", "pairwise-all", "--answers", str(a), str(b), "--judge", "hf:tiny-llama",
               "--out", str(tmp_path / "o"), *extra]
    assert main(command) == 2
    error = capsys.readouterr().err
    assert expected.format(b=b) in error and len(error.strip().splitlines()) == 1, error
    assert not (tmp_path / "o" / "mt_bench_pairwise").exists()


def test_single_mode_takes_one_file(data, tmp_path, capsys):
    files = [str(write_answers(tmp_path / f"{m}.jsonl", m, load_questions()[:1])) for m in ("a", "b")]
    assert main(["mtbench", "judge", "--answers", *files, "--judge", "hf:tiny-llama", "--out", str(tmp_path)]) == 2
    assert "--mode single judges one model's file at a time (got 2)" in capsys.readouterr().err


def test_the_cli_dry_run_counts_and_a_rerun_sends_nothing(data, tmp_path, capsys):
    from helpers import FakeOpenAI

    pytest.importorskip("openai")
    questions = select_questions(load_questions(), 3)
    folder = tmp_path / "exp"
    for label in ("base", "full_ft"):
        write_answers(folder / label / "seed-0" / "mt_bench" / "answers.jsonl", f"exp/{label}/seed-0", questions)
    server = FakeOpenAI(default=lambda body: verdict_of(body["messages"][-1]["content"]))
    try:
        command = ["mtbench", "judge", "--mode", "pairwise-baseline", "--answers", str(folder), "--judge",
                   server.spec(), "--out", str(folder)]
        assert main([*command, "--dry-run"]) == 0 and server.requests == []
        assert "requests: 12" in capsys.readouterr().out  # 3 questions x 2 turns x 2 orders
        assert main(command) == 0 and len(server.requests) == 12
        out = capsys.readouterr().out
        assert "| base    | full_ft |" in out and "6 game(s) judged now, 6 in all" in out
        assert main(command) == 0 and len(server.requests) == 12  # resumed: nothing sent again
        assert main([*command, "--dry-run"]) == 0 and "requests: 0" in capsys.readouterr().out
    finally:
        server.close()


def write_pairwise_experiment(tmp_path, monkeypatch, **mt_bench) -> None:
    """tmp_path/experiment.yaml (the working folder): full FT and LISA on tiny-llama for 2 steps, base too, judged
    pairwise against full FT on 3 MT-Bench questions; `mt_bench` adds or overrides its mt_bench fields."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.json").write_text(json.dumps(TINY_RECORDS))
    config = {"name": "tiny_pairs", "model": "tiny-llama", "data": {"path": "tiny.json", "template": "plain"},
              "train": {"steps": 2, "batch_size": 4, "max_length": 64, "progress": False},
              "methods": [{"name": "full_ft"}, {"name": "lisa", "config": {"gamma": 1, "interval": 1}}],
              "eval": {"forgetting": None}, "out": "out",
              "mt_bench": {"judge": "hf:tiny-llama", "limit": 3, "mode": "pairwise-baseline", **mt_bench}}
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(config))


def test_the_runner_judges_pairs_after_the_sweep_and_the_report_has_their_table(data, tmp_path, monkeypatch,
                                                                                capsys):
    judge = ScriptedJudge("scripted-judge")
    monkeypatch.setattr(pipeline, "cached_judge", lambda spec, max_tokens=2048: judge)
    write_pairwise_experiment(tmp_path, monkeypatch, max_new_tokens=6)
    assert main(["run", "experiment.yaml", "--no-plots"]) == 0
    out = tmp_path / "out"
    (pair_file,) = (out / "mt_bench_pairwise").glob("*_pair.jsonl")
    rows = read_jsonl(pair_file)
    assert sorted({(row["model_1"], row["model_2"]) for row in rows}) == [
        ("tiny_pairs/base/seed-0", "tiny_pairs/full_ft/seed-0"),
        ("tiny_pairs/lisa/seed-0", "tiny_pairs/full_ft/seed-0")]
    assert len(rows) == 2 * 3 * 2 and len(judge.requests) == 2 * len(rows)
    assert not list(out.rglob("scores-*.json"))  # a pairwise mode grades no single turn
    report = (out / "mt_bench_pairwise.md").read_text()
    slug = pair_file.stem.removesuffix("_pair")  # the judge's one name in every heading, then what it is
    assert f"judge {slug}: scripted:scripted-judge" in report and "| base    | full_ft |" in report
    assert "| lisa    | full_ft |" in report
    assert "MT-Bench pairwise results are in mt_bench_pairwise.md" in (out / "table.md").read_text()
    assert main(["report", "out", "--html", "--no-plots"]) == 0
    page = (out / "report.html").read_text()
    assert f"MT-Bench pairwise, judge {slug}: scripted:scripted-judge" in page and "<td>lisa</td>" in page
    capsys.readouterr()
    assert main(["mtbench", "show", "out"]) == 0
    assert report.split("\n", 1)[1] in capsys.readouterr().out  # the same table, whatever prints it
    stamp = pair_file.stat().st_mtime_ns
    assert main(["run", "experiment.yaml", "--no-plots"]) == 0
    assert pair_file.stat().st_mtime_ns == stamp and len(judge.requests) == 2 * len(rows)  # nothing re-judged


def test_an_experiment_baseline_that_is_no_row_is_one_line_before_training(data, tmp_path, monkeypatch, capsys):
    write_pairwise_experiment(tmp_path, monkeypatch, baseline="ful_ft")
    assert main(["run", "experiment.yaml", "--no-plots"]) == 2
    error = capsys.readouterr().err.strip()
    assert "mt_bench.baseline: 'ful_ft' is not a row of this experiment (base, full_ft, lisa) Did you mean " \
           "'full_ft'?" in error and len(error.splitlines()) == 1, error
    assert not list((tmp_path / "out").glob("*/seed-*/summary.json"))  # nothing trained
