"""GSM8K: the local lm-eval task `gsm8k_local` scores like lm-eval's `gsm8k`; the training reader; the CPU config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from owlore_bench.datasets import gsm8k
from owlore_bench.errors import UserError
from owlore_bench.paths import tasks_dir

GOLD = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72"
# (gold answer's final number, model response, exact_match under strict-match, under flexible-extract), derived by
# hand from lm-eval's regexes: strict takes the number after "#### "; flexible the last number-like run; both then
# drop "," "$" and a final "." (regexes_to_ignore) on response and target alike, and compare ignoring case.
CASES = [
    ("72", " 48/2 = 24 in May, 48+24 = 72.\n#### 72", 1, 1),
    ("72", " She sold 72 clips.", 0, 1),  # no "####": strict falls back to [invalid]; flexible finds "72." -> "72"
    ("1234", " #### 1,234", 1, 1),  # the thousands comma is ignored on both sides
    ("72", " #### $72", 0, 1),  # strict wants a digit right after "#### "
    ("72", " #### 72.00", 0, 0),  # "72.00" is not "72": exact match is on text, not on value
    ("-5", " It fell by 5, so #### -5", 1, 1),
    ("72", " #### 71", 0, 0),
    ("72", " #### 72 apples, not 70", 1, 0),  # flexible takes the LAST number
]


@pytest.fixture(scope="module")
def task(request):
    from conftest import SHARED_DATA

    if not (SHARED_DATA / "gsm8k" / "test.jsonl").is_file():
        pytest.skip(f"{SHARED_DATA}/gsm8k is absent (set OWLORE_BENCH_DATA to the benchmark data folder)")
    from owlore_bench.evaluation.harness import _build_tasks

    return _build_tasks(["gsm8k_local"], with_hub_tasks=False)[0][0]


def lm_eval_score(task, doc: dict, response: str) -> dict[str, int]:
    """exact_match per filter of one response, through the task's own filter ensembles and process_results."""
    from lm_eval.api.instance import Instance

    instance = Instance("generate_until", doc, ("", {}), 0, ("gsm8k_local", 0, 1))
    instance.resps = [response]
    scores = {}
    for ensemble in task._filters:
        ensemble.apply([instance])
        scores[ensemble.name] = int(task.process_results(doc, [instance.filtered_resps[ensemble.name]])["exact_match"])
    return scores


@pytest.mark.parametrize("number, response, strict, flexible", CASES)
def test_hand_made_responses_score_as_lm_eval_regexes_say(task, number, response, strict, flexible):
    doc = {"question": "How many?", "answer": GOLD.replace("#### 72", f"#### {number}")}
    assert lm_eval_score(task, doc, response) == {"strict-match": strict, "flexible-extract": flexible}


def _yaml_with_functions_as_text(path: Path) -> dict:
    loader = type("Loader", (yaml.SafeLoader,), {})
    loader.add_constructor("!function", lambda load, node: f"!function {load.construct_scalar(node)}")
    return yaml.load(path.read_text(), Loader=loader)  # noqa: S506 - a SafeLoader subclass


def test_the_local_task_yaml_equals_lm_evals_gsm8k_except_for_where_the_data_comes_from():
    import lm_eval

    ours = _yaml_with_functions_as_text(tasks_dir() / "gsm8k_local" / "gsm8k_local.yaml")
    theirs = _yaml_with_functions_as_text(Path(lm_eval.__file__).parent / "tasks" / "gsm8k" / "gsm8k.yaml")
    data_fields = {"task", "tag", "dataset_path", "dataset_name", "custom_dataset", "dataset_kwargs"}
    assert {k: v for k, v in ours.items() if k not in data_fields} == \
        {k: v for k, v in theirs.items() if k not in data_fields}
    assert ours["custom_dataset"] == "!function gsm8k_data.load_gsm8k"


def test_the_local_task_reads_every_record_and_prompts_like_lm_eval(task):
    assert len(task.dataset["test"]) == 1319 and len(task.dataset["train"]) == 7473
    doc = task.dataset["test"][0]
    assert task.doc_to_text(doc) == f"Question: {doc['question']}\nAnswer:"
    assert task.doc_to_target(doc).rsplit("#### ", 1)[1] == "18"
    from owlore_bench.evaluation.harness import local_equivalent

    assert local_equivalent("gsm8k") == "gsm8k_local"


def test_a_tiny_model_is_evaluated_end_to_end_on_three_questions(task, monkeypatch):
    from lm_eval.models.huggingface import HFLM

    from owlore_bench.evaluation.harness import evaluate_model_with_samples
    from owlore_bench.models import tiny_llama

    # A random model never writes a stop string, so it would generate lm-eval's default 256 tokens per question;
    # 16 keep the test fast and change nothing it checks (the task's own until strings still apply).
    monkeypatch.setattr(HFLM, "max_gen_toks", property(lambda self: 16))
    model, tokenizer = tiny_llama()
    rows, samples, _ = evaluate_model_with_samples(model, tokenizer, ["gsm8k_local"], num_fewshot=1, limit=3,
                                                   batch_size=3)
    by_metric = {row["metric"]: row for row in rows if row["task"] == "gsm8k_local"}
    assert set(by_metric) == {"exact_match/strict-match", "exact_match/flexible-extract"}
    assert all(row["n"] == 3 and row["value"] == 0.0 for row in by_metric.values())  # a random model: no answer
    records = samples["gsm8k_local"]
    assert [record["i"] for record in records] == [0, 1, 2]
    assert all(isinstance(record["p"], str) and record["exact_match/strict-match"] == 0 for record in records)


def test_gsm8k_jsonl_becomes_training_records_in_lm_evals_format(tmp_path: Path):
    from owlore_bench.datasets.records import read_records

    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps({"question": f"What is {k}+1?", "answer": f"{k}+1=<<{k}+1={k + 1}>>{k + 1}"
                                          f"\n#### {k + 1}"}) for k in range(3)) + "\n")
    records = read_records(path, limit=2)
    assert records == [{"instruction": f"Question: What is {k}+1?\nAnswer:", "input": "",
                        "output": f" {k}+1=<<{k}+1={k + 1}>>{k + 1}\n#### {k + 1}"} for k in range(2)]


def test_a_bad_gsm8k_record_is_one_line_naming_it(tmp_path: Path):
    with pytest.raises(UserError, match=r"record 1 needs non-empty string fields question and answer"):
        gsm8k.instruction_records([{"question": "q", "answer": "a"}, {"question": "q"}], "train.jsonl")
    assert not gsm8k.is_gsm8k([{"instruction": "x", "question": "q", "answer": "a"}])


def test_a_missing_data_folder_is_one_line(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("OWLORE_BENCH_DATA", str(tmp_path))
    with pytest.raises(UserError, match="task gsm8k_local: local data file .*gsm8k/test.jsonl not found"):
        gsm8k.load_gsm8k()


def test_the_cpu_config_trains_on_gsm8k_and_evaluates_the_local_task():
    from conftest import REPO_ROOT

    from owlore_bench.experiment import load_experiment

    experiment = load_experiment(REPO_ROOT / "configs" / "gsm8k_cpu.yaml")
    assert experiment.eval.tasks == ["gsm8k_local"] and experiment.data.path == "data:gsm8k/train.jsonl"
    assert experiment.data.template == "plain"
