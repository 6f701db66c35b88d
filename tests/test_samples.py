"""Per-question outcomes (evaluation/samples.py): extracted from lm-eval's logged samples, stored by the runner and
`eval`, agreeing with eval.json exactly; and `owlore-bench compare` on them, end to end, with its bad inputs."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import TINY_RECORDS

from owlore_bench.cli import main
from owlore_bench.evaluation.harness import evaluate_model, evaluate_model_with_samples
from owlore_bench.evaluation.samples import read_samples, records_from_results, samples_path, write_samples
from owlore_bench.models import tiny_llama

TASK = "arc_easy_choices"
TRAIN = ["train", "--model", "tiny-llama", "--steps", "2", "--batch-size", "2", "--max-length", "64", "--template",
         "plain"]


def _logged(doc_id, lls, target, acc, acc_norm, filter_name="none", doc=None):
    """One entry of lm-eval's results['samples'][task] for a multiple-choice document."""
    return {"doc_id": doc_id, "doc": doc or {"prompt": "q", "choices": ["x"] * len(lls)}, "target": target,
            "resps": [[(ll, False)] for ll in lls], "filtered_resps": [(ll, False) for ll in lls],
            "filter": filter_name, "metrics": ["acc", "acc_norm"], "acc": acc, "acc_norm": acc_norm}


def test_records_are_compact_with_the_argmax_prediction_and_lm_evals_scores():
    results = {"samples": {"t": [
        _logged(1, [-3.0, -1.0, -2.0], 1, 1.0, 0.0, doc={"id": "Mercury_7", "choices": ["a", "b", "c"]}),
        _logged(0, [-1.0, -1.0, -5.0], 1, 0.0, 1.0),  # a tie: np.argmax (lm-eval's pick) takes the first
        _logged(0, [-1.0, -1.0, -5.0], 1, 1.0, 1.0, filter_name="strict"),  # another filter: same record
    ]}}
    records = records_from_results(results)["t"]
    assert records == [{"i": 0, "t": 1, "p": 0, "acc": 0, "acc_norm": 1, "acc/strict": 1, "acc_norm/strict": 1},
                       {"i": 1, "id": "Mercury_7", "t": 1, "p": 1, "acc": 1, "acc_norm": 0}]


def test_samples_round_trip_in_about_50_bytes_a_document(tmp_path):
    records = [{"i": k, "t": k % 4, "p": (k * 7) % 4, "acc": int(k % 4 == (k * 7) % 4), "acc_norm": k % 2}
               for k in range(1000)]
    [path] = write_samples(tmp_path, {"piqa_labels": records})
    assert path == samples_path(tmp_path, "piqa_labels") == tmp_path / "samples" / "piqa_labels.jsonl.gz"
    assert read_samples(tmp_path, "piqa_labels") == records
    assert path.stat().st_size < 50 * len(records)
    assert len(gzip.decompress(path.read_bytes()).splitlines()[0]) <= 50  # short keys, no spaces
    before = path.read_bytes()
    write_samples(tmp_path, {"piqa_labels": records})
    assert path.read_bytes() == before  # byte-reproducible (gzip mtime 0)


def test_evaluate_model_with_samples_gives_evaluate_models_rows_and_one_record_per_document():
    model, tokenizer = tiny_llama(seed=3)
    rows, samples, protocol = evaluate_model_with_samples(model, tokenizer, [TASK, "piqa_labels"], limit=5)
    assert rows == evaluate_model(model, tokenizer, [TASK, "piqa_labels"], limit=5)  # unchanged for old callers
    assert list(samples) == [TASK, "piqa_labels"]
    assert all([record["i"] for record in records] == list(range(5)) for records in samples.values())
    for row in rows:
        assert sum(record[row["metric"]] for record in samples[row["task"]]) / 5 == row["value"]
    import lm_eval  # the protocol every score travels with (LMFlow #898 turned on exactly these facts)

    assert protocol["lm_eval"] == lm_eval.__version__ and protocol["apply_chat_template"] is False
    assert (protocol["num_fewshot"], protocol["limit"]) == (None, 5)
    assert {task: facts["num_fewshot"] for task, facts in protocol["tasks"].items()} == {TASK: 0, "piqa_labels": 0}
    assert all(facts["version"] is not None for facts in protocol["tasks"].values())


def assert_outcomes_match_eval_json(folder: Path) -> None:
    """For every task row of eval.json with a stored file: mean of correct == the row's value EXACTLY, count == n."""
    rows = json.loads((folder / "eval.json").read_text())["rows"]
    checked = 0
    for row in rows:
        if not samples_path(folder, row["task"]).is_file():
            assert row["task"].endswith("_avg") or row["task"] in ("mmlu_local", "bigbench_default"), row
            continue
        records = read_samples(folder, row["task"])
        correct = [record[row["metric"]] for record in records]
        assert (sum(correct) / len(correct), len(correct)) == (row["value"], row["n"]), row
        if row["metric"] == "acc":  # the stored prediction is the one lm-eval scored
            assert all(record["acc"] == int(record["p"] == record["t"]) for record in records)
        checked += 1
    assert checked >= 2, rows


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two tiny runs (LoRA barely moved, full FT at a high lr: some answers differ), each evaluated into its own
    folder by `eval --run RUN --out RUN`."""
    tmp = tmp_path_factory.mktemp("compare")
    data = tmp / "tiny.json"
    data.write_text(json.dumps(TINY_RECORDS))
    runs = []
    for method, lr in (("lora", "1e-4"), ("full_ft", "3e-2")):
        run = tmp / method / "seed-0"
        assert main([*TRAIN, "--method", method, "--data", str(data), "--lr", lr, "--out", str(run)]) == 0
        assert main(["eval", "--run", str(run), "--tasks", f"{TASK},piqa_labels", "--limit", "8",
                     "--out", str(run)]) == 0
        runs.append(run)
    return runs


def test_eval_stores_outcomes_that_agree_with_eval_json(two_runs, capsys):
    for run in two_runs:
        assert sorted(path.name for path in (run / "samples").iterdir()) == [f"{TASK}.jsonl.gz", "piqa_labels.jsonl.gz"]
        assert_outcomes_match_eval_json(run)


def test_compare_prints_the_paired_table(two_runs, capsys):
    capsys.readouterr()
    assert main(["compare", *map(str, two_runs)]) == 0
    out = capsys.readouterr().out
    table = {cells[0]: cells for cells in _cells(out)}
    differences = []
    for task in (TASK, "piqa_labels"):
        task_n, acc_a, acc_b, delta, *_, marker = table[task][1:]
        a, b = ([r["acc"] for r in read_samples(run, task)] for run in two_runs)
        assert (task_n, marker) == ("8", "n.s.")  # 8 questions decide nothing
        assert acc_a.startswith(f"{100 * sum(a) / 8:.1f} [") and acc_b.startswith(f"{100 * sum(b) / 8:.1f} [")
        assert delta == f"{100 * (sum(a) - sum(b)) / 8:+.1f}"
        differences.append(100 * (sum(a) - sum(b)) / 8)
    assert any(differences), "the two runs should disagree somewhere"
    assert table["Avg (2 tasks)"][4] == f"{sum(differences) / 2:+.1f}"
    assert "McNemar" in out and "Holm" in out
    assert main(["compare", str(two_runs[0]), str(two_runs[0]), "--tasks", TASK]) == 0  # a run against itself
    same = {cells[0]: cells for cells in _cells(capsys.readouterr().out)}[TASK]
    bound = 100 * (1 - 0.025 ** (1 / 8))  # 0 of 8 questions differ: the exact interval still has width
    assert same[4:] == ["+0.0", f"[-{bound:.1f}, +{bound:.1f}]", "1.000", "1.000", "n.s."]


def _cells(out: str) -> list[list[str]]:
    """The table's lines, split into cells (columns are two or more spaces apart)."""
    return [re.split(r"\s{2,}", line.strip()) for line in out.splitlines() if "  " in line.strip()]


def _one_line_error(capsys) -> str:
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "Traceback" not in error, error
    return error


def test_compare_refuses_runs_evaluated_on_different_questions(two_runs, tmp_path, capsys):
    fewer = tmp_path / "fewer"
    assert main(["eval", "--run", str(two_runs[1]), "--tasks", TASK, "--limit", "6", "--out", str(fewer)]) == 0
    capsys.readouterr()
    assert main(["compare", str(two_runs[0]), str(fewer)]) == 2
    error = _one_line_error(capsys)
    assert f"task {TASK}:" in error and "on 8 questions" in error and "on 6" in error and "--limit" in error


def test_compare_says_how_to_re_evaluate_a_run_without_samples(two_runs, tmp_path, capsys):
    older = tmp_path / "older"
    shutil.copytree(two_runs[1], older)
    shutil.rmtree(older / "samples")  # what a run evaluated before outcomes were stored looks like
    assert main(["compare", str(two_runs[0]), str(older), "--tasks", TASK]) == 2
    error = _one_line_error(capsys)
    assert "no per-question outcomes (samples/)" in error
    assert f"owlore-bench eval --run {older} --tasks {TASK} --out {older}" in error
    assert main(["compare", str(older), str(two_runs[0])]) == 2  # no --tasks: the ones in its eval.json
    assert f"owlore-bench eval --run {older} --tasks {TASK},piqa_labels --out {older}" in _one_line_error(capsys)


def test_the_runner_stores_outcomes_and_compare_reads_its_unit_folders(tmp_path, capsys):
    data = tmp_path / "tiny.json"
    data.write_text(json.dumps(TINY_RECORDS))
    config = {"name": "tiny_compare", "model": "tiny-llama", "data": {"path": str(data), "template": "plain"},
              "train": {"steps": 2, "batch_size": 2, "max_length": 64, "progress": False},
              "methods": [{"name": "lora", "config": {"r": 4}}], "seeds": [0],
              "eval": {"tasks": [TASK, "piqa_labels"], "limit": 8, "batch_size": 8}, "out": str(tmp_path / "out")}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", str(tmp_path / "sweep.yaml"), "--no-plots"]) == 0
    units = sorted(path.parent for path in (tmp_path / "out").glob("*/seed-0/eval.json"))
    assert len(units) == 2, units  # base and lora
    for unit in units:
        assert_outcomes_match_eval_json(unit)
    capsys.readouterr()
    assert main(["compare", *map(str, units)]) == 0
    assert "piqa_labels" in capsys.readouterr().out


def test_task_limits_give_one_task_more_questions_and_score_the_same_first_documents():
    model, tokenizer = tiny_llama(seed=3)
    rows, samples, protocol = evaluate_model_with_samples(model, tokenizer, ["boolq_labels", "piqa_labels"], limit=3,
                                                          task_limits={"boolq_labels": 7})
    n = {row["task"]: row["n"] for row in rows if row["metric"] == "acc" and not row["task"].endswith("_avg")}
    assert n == {"boolq_labels": 7, "piqa_labels": 3}
    assert [record["i"] for record in samples["boolq_labels"]] == list(range(7))
    assert protocol["limit"] == 3 and protocol["task_limits"] == {"boolq_labels": 7}
    _, plain, _ = evaluate_model_with_samples(model, tokenizer, ["boolq_labels"], limit=3)
    assert samples["boolq_labels"][:3] == plain["boolq_labels"]  # the first documents, as limit takes them


def test_a_task_limit_for_a_task_not_evaluated_is_one_line():
    from owlore_bench.errors import UserError

    model, tokenizer = tiny_llama(seed=3)
    with pytest.raises(UserError, match="eval.task_limits: boolq_label is not one of the tasks evaluated") as error:
        evaluate_model_with_samples(model, tokenizer, ["boolq_labels"], limit=2, task_limits={"boolq_label": 5})
    assert "Did you mean 'boolq_labels'" in str(error.value)
