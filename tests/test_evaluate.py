"""evaluate_model against an independent log-likelihood computation, rows, train-mode restore, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from owlore_bench.cli import main
from owlore_bench.errors import UserError
from owlore_bench.evaluation.harness import average_rows, check_tasks, evaluate_model, rows_from_results, run_lm_eval
from owlore_bench.models import tiny_llama
from owlore_bench.paths import DATA_ENV

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = [("Which is a fruit?", ["apple", "stone", "car", "cloud"], 0),
             ("What do plants need?", ["darkness", "sunlight", "plastic"], 1),
             ("Which animal barks?", ["cat", "fish", "dog", "bird", "cow"], 2),
             ("Water freezes at?", ["100 C", "0 C"], 1),
             ("Which is hot?", ["ice", "snow", "fire", "rain"], 2),
             ("What is 2 + 2?", ["3", "4", "5", "22"], 1)]


def write_commonsense(root: Path, folder: str = "ARC-Easy") -> Path:
    """A small LLM-Adapters test.json (3-5 options) under root/commonsense/<folder>."""
    records = []
    for question, options, gold in QUESTIONS:
        labels = [f"answer{k + 1}" for k in range(len(options))]
        listed = " ".join(f"Answer{k + 1}: {text}" for k, text in enumerate(options))
        records.append({"instruction": f"Please choose the correct answer to the question: {question}\n\n{listed}"
                                       f"\n\nAnswer format: {'/'.join(labels)}",
                        "input": "", "output": f"the correct answer is {labels[gold]}", "answer": labels[gold]})
    (root / "commonsense" / folder).mkdir(parents=True, exist_ok=True)
    (root / "commonsense" / folder / "test.json").write_text(json.dumps(records))
    return root


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    write_commonsense(tmp_path)
    write_commonsense(tmp_path, "piqa")
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    return tmp_path


def summed_loglikelihood(model, tokenizer, context: str, continuation: str) -> float:
    """Sum of log p(continuation tokens | context), computed directly from one unpadded forward pass.

    As lm-eval defines it, trailing whitespace of the context belongs to the continuation (the '\n' that ends
    the Alpaca prompt of the _labels tasks is scored too; the same for every choice, so it never changes a pick).
    """
    stripped = context.rstrip()
    context, continuation = stripped, context[len(stripped):] + continuation
    context_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
    all_ids = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([all_ids])).logits[0].float()
    log_probs = torch.log_softmax(logits, dim=-1)
    return sum(log_probs[position - 1, all_ids[position]].item() for position in range(len(context_ids), len(all_ids)))


@pytest.mark.parametrize("task, delimiter", [("arc_easy_choices", " "), ("arc_easy_labels", "")])
def test_predictions_and_acc_match_an_independent_computation(data_root, task, delimiter):
    model, tokenizer = tiny_llama(seed=3, max_position_embeddings=2048)  # no left-truncation of the prompt
    model.eval()
    results = run_lm_eval(model, tokenizer, [task], limit=4, batch_size=4, log_samples=True)
    samples = sorted(results["samples"][task], key=lambda sample: sample["doc_id"])
    assert len(samples) == 4
    correct = 0
    for sample in samples:
        doc = sample["doc"]
        ours = [summed_loglikelihood(model, tokenizer, doc["prompt"], delimiter + choice) for choice in doc["choices"]]
        theirs = [float(response[0]) for response in sample["filtered_resps"]]
        assert ours == pytest.approx(theirs, abs=1e-3)
        predicted = max(range(len(ours)), key=ours.__getitem__)
        assert predicted == max(range(len(theirs)), key=theirs.__getitem__)
        correct += predicted == doc["gold"]
    rows = {row["metric"]: row for row in rows_from_results(results) if row["task"] == task}
    assert rows["acc"]["value"] == correct / 4
    assert rows["acc"]["n"] == 4 and rows["acc"]["num_fewshot"] == 0


def test_rows_restore_train_mode_and_average(data_root):
    model, tokenizer = tiny_llama(seed=1)
    model.train()
    rows = evaluate_model(model, tokenizer, ["arc_easy_choices", "piqa_choices"], limit=3, batch_size=8)
    assert model.training
    assert all(set(row) == {"task", "metric", "value", "stderr", "n", "num_fewshot"} for row in rows)
    by_key = {(row["task"], row["metric"]): row for row in rows}
    average = by_key[("commonsense_choices_avg", "acc")]
    parts = [by_key[("arc_easy_choices", "acc")]["value"], by_key[("piqa_choices", "acc")]["value"]]
    assert average["value"] == pytest.approx(sum(parts) / 2) and average["n"] == 6
    model.eval()
    evaluate_model(model, tokenizer, ["arc_easy_labels"], limit=2)
    assert not model.training


def test_average_needs_two_tasks():
    row = {"task": "piqa_choices", "metric": "acc", "value": 0.5, "stderr": 0.1, "n": 4, "num_fewshot": 0}
    assert average_rows([row]) == []


def test_check_tasks_unknown_name_suggests_the_close_one():
    with pytest.raises(UserError, match="Did you mean 'arc_easy_choices'"):
        check_tasks(["arc_easy_choise"])


def test_check_tasks_names_missing_local_data(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "nowhere"))
    check_tasks(["boolq_choices"])  # embedded in the package: no data folder needed
    with pytest.raises(UserError, match=f"hellaswag_choices.*{DATA_ENV}") as error:
        check_tasks(["hellaswag_choices"])
    assert "\n" not in str(error.value)


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "owlore_bench.cli", *args], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, **(env or {})}, timeout=300)


def test_cli_eval_writes_rows(data_root, tmp_path, capsys):
    out = tmp_path / "rows.json"
    args = ["eval", "--model", "tiny-llama", "--tasks", "arc_easy_choices", "--limit", "2", "--out", str(out)]
    assert main(args) == 0
    rows = json.loads(out.read_text())["rows"]
    assert {row["metric"] for row in rows} == {"acc", "acc_norm"} and rows[0]["n"] == 2
    assert "arc_easy_choices" in capsys.readouterr().out


def test_cli_eval_of_a_trained_run(data_root, tmp_path, capsys):  # in-process: the subprocess start costs ~10 s
    train_file = tmp_path / "train.json"
    train_file.write_text(json.dumps([{"instruction": "Say hi", "input": "", "output": " hi"}] * 4))
    # plain template: the byte-level test tokenizer makes the Alpaca prompt longer than max_length
    assert main(["train", "--method", "lora", "--model", "tiny-llama", "--data", str(train_file), "--steps", "2",
                 "--batch-size", "2", "--max-length", "64", "--template", "plain", "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "model" / "adapter_config.json").is_file()  # what a later eval needs is saved
    assert main(["eval", "--run", str(tmp_path / "run"), "--tasks", "arc_easy_choices", "--limit", "2"]) == 0
    assert "arc_easy_choices" in capsys.readouterr().out


def test_cli_bad_input_is_one_line():  # a subprocess: exit code 2, one line on stderr, no traceback
    done = run_cli("eval", "--model", "tiny-llama", "--tasks", "mmlu_loca")
    assert done.returncode == 2
    assert "Did you mean 'mmlu_local'" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, fragment", [
    (["--tasks", "arc_easy_choices", "--limit", "0"], "--limit"),
    (["--tasks", " , "], "--tasks"),
    (["--tasks", "arc_easy_choices", "--batch-size", "0"], "--batch-size"),
])
def test_cli_bad_numbers_and_lists(args, fragment, capsys):  # in-process: the same main() the CLI runs
    assert main(["eval", "--model", "tiny-llama", *args]) == 2
    error = capsys.readouterr().err
    assert fragment in error and len(error.strip().splitlines()) == 1


def test_cli_hub_task_without_network_is_one_line(tmp_path):
    done = run_cli("eval", "--model", "tiny-llama", "--tasks", "arc_easy", "--limit", "2",
                   env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert done.returncode == 2, done.stderr
    assert "arc_easy" in done.stderr and "arc_easy_choices" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_smollm2_zero_shot_is_above_chance():
    from owlore_bench.models import load_model

    model, tokenizer = load_model("smollm2-135m", device="cpu")
    # 60 questions a task (the suite's longest test was 4.5 min at 120 under load): measured 51.7 % and 68.3 %
    # here (`owlore-bench eval --model smollm2-135m --tasks arc_easy_choices,piqa_choices --limit 60`); the
    # claim is that the 95 % Wilson interval lies above chance (25 % for 4 options, 50 % for 2), not a point value.
    from scipy.stats import binomtest

    rows = evaluate_model(model, tokenizer, ["arc_easy_choices", "piqa_choices"], limit=60, batch_size=16)
    acc = {row["task"]: row for row in rows if row["metric"] == "acc"}
    print({task: round(row["value"], 3) for task, row in acc.items()})
    for task, chance in (("arc_easy_choices", 0.25), ("piqa_choices", 0.5)):
        row = acc[task]
        low = binomtest(round(row["value"] * row["n"]), row["n"]).proportion_ci(0.95, method="wilson").low
        assert row["n"] == 60 and low > chance, (task, row, low)
