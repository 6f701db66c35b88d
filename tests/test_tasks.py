"""The local lm-eval tasks: names, the data root, MMLU's prompt and size-weighted groups, bring-your-own BIG-bench."""

from __future__ import annotations

import io
import json
import random
import tarfile
from pathlib import Path

import pytest
import yaml

from owlore_bench.datasets import bigbench
from owlore_bench.downloads import sha256_of
from owlore_bench.errors import UserError
from owlore_bench.evaluation.harness import COMMONSENSE, evaluate_model, task_manager
from owlore_bench.evaluation.local_tasks import mmlu_docs
from owlore_bench.paths import DATA_ENV, tasks_dir


def test_every_local_task_is_registered():
    names = set(task_manager(False).all_tasks)
    expected = {f"{task}_{scoring}" for task in COMMONSENSE for scoring in ("choices", "labels")}
    expected |= {"mmlu_local", "mmlu_local_stem", "mmlu_local_humanities", "mmlu_local_other",
                 "mmlu_local_social_sciences", "bigbench_default", *bigbench.EVAL_TASKS}
    assert expected <= names
    assert len([name for name in names if name.startswith("mmlu_local_") and not name.endswith("_tasks")]) == 57 + 4


def load_docs(task: str) -> list[dict]:
    built = task_manager(False).load([task])["tasks"][task]
    return list(built.test_docs())


def test_data_root_comes_from_the_environment(tmp_path, monkeypatch):
    folder = tmp_path / "commonsense" / "winogrande"
    folder.mkdir(parents=True)
    records = [{"instruction": f"Please choose the correct answer to fill in the blank to complete the given sentence: "
                               f"Tom gave _ the ball {k}.\n\nOption1: Ann Option2: the dog\n\nAnswer format: "
                               f"option1/option2", "input": "", "output": "the correct answer is option2",
                "answer": "option2"} for k in range(3)]
    (folder / "test.json").write_text(json.dumps(records))
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    docs = load_docs("winogrande_choices")
    assert len(docs) == 3
    assert docs[0] == {"prompt": "Question: Tom gave _ the ball 0.\nAnswer:", "choices": ["Ann", "the dog"], "gold": 1}
    labels = load_docs("winogrande_labels")
    assert labels[0]["choices"] == ["the correct answer is option1", "the correct answer is option2"]
    assert labels[0]["prompt"].endswith("Answer format: option1/option2\n\n### Response:\n")


def test_mmlu_prompt_is_lm_evals_own(tmp_path):
    from lm_eval.utils import apply_template

    template = yaml.safe_load((Path(__import__("lm_eval").__file__).parent / "tasks" / "mmlu" / "default" /
                               "_default_template_yaml").read_text())["doc_to_text"]
    csv = tmp_path / "x_test.csv"
    csv.write_text('question,choice0,choice1,choice2,choice3,answer\n" What, is 2+2? ",3,4,"5, or 6",22,1\n')
    doc = mmlu_docs(csv)[0]
    hub_doc = {"question": " What, is 2+2? ", "choices": ["3", "4", "5, or 6", "22"], "answer": 1}
    assert doc["prompt"] == apply_template(template, hub_doc)
    assert (doc["choices"], doc["gold"]) == (["A", "B", "C", "D"], 1)


def write_mmlu(root: Path) -> dict[str, int]:
    """57 subjects with 1-3 test rows each (sizes differ, so weighting matters) and 2 dev rows."""
    subjects = [yaml.safe_load(p.read_text())["dataset_kwargs"]["subject"]
                for p in sorted((tasks_dir() / "mmlu_local").glob("mmlu_local_*.yaml"))]
    rng, sizes = random.Random(0), {}
    for part in ("test", "dev"):
        (root / "mmlu" / part).mkdir(parents=True)
    for subject in subjects:
        sizes[subject] = rng.randint(1, 3)
        for part, count in (("test", sizes[subject]), ("dev", 2)):
            rows = [f"Q{k} {subject}?,a,b,c,d,{rng.randint(0, 3)}" for k in range(count)]
            (root / "mmlu" / part / f"{subject}_{part}.csv").write_text(
                "question,choice0,choice1,choice2,choice3,answer\n" + "\n".join(rows) + "\n")
    return sizes


def test_mmlu_groups_are_size_weighted(tmp_path, monkeypatch):
    from owlore_bench.models import tiny_llama

    sizes = write_mmlu(tmp_path)
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    model, tokenizer = tiny_llama(seed=2)
    rows = evaluate_model(model, tokenizer, ["mmlu_local"], num_fewshot=1, batch_size=16)
    acc = {row["task"]: row for row in rows if row["metric"] == "acc"}
    subject_rows = {name[len("mmlu_local_"):]: row for name, row in acc.items() if name[len("mmlu_local_"):] in sizes}
    assert {s: r["n"] for s, r in subject_rows.items()} == sizes
    weighted = sum(r["value"] * r["n"] for r in subject_rows.values()) / sum(sizes.values())
    assert acc["mmlu_local"]["value"] == pytest.approx(weighted)
    assert acc["mmlu_local"]["n"] == sum(sizes.values()) and acc["mmlu_local"]["num_fewshot"] == 1


def fake_task(name: str, count: int) -> dict:
    examples = [{"input": f"Is {k} even?", "target_scores": {"Yes": int(k % 2 == 0), "No": int(k % 2 == 1)}}
                for k in range(count)]
    examples += [{"input": "Is 0 even?", "target_scores": {"Yes": 1, "No": 0}},   # duplicate prompt: dropped
                 {"input": "Tie?", "target_scores": {"Yes": 1, "No": 1}}]         # no single gold: dropped
    return {"name": name, "task_prefix": "Answer the question.", "examples": examples}


@pytest.fixture
def fake_bigbench(tmp_path, monkeypatch):
    """A BIG-bench checkout written by the test: bigbench/benchmark_tasks/<name>/task.json in BIG-bench's format."""
    monkeypatch.setenv("OWLORE_BENCH_CACHE", str(tmp_path / "cache"))
    checkout = tmp_path / "BIG-bench"
    for name in bigbench.CANDIDATES:
        folder = checkout / "bigbench" / "benchmark_tasks" / name
        folder.mkdir(parents=True)
        (folder / "task.json").write_text(json.dumps(fake_task(name, 900)))
    monkeypatch.setenv(bigbench.SOURCE_ENV, str(checkout))
    return checkout


def test_bigbench_split_is_deterministic_and_disjoint(fake_bigbench):
    first, again = bigbench.split("navigate"), bigbench.split("navigate")
    assert first == again
    assert len(first["test"]) == bigbench.TEST_EXAMPLES and len(first["train"]) == 900 - bigbench.TEST_EXAMPLES
    assert not {d["prompt"] for d in first["test"]} & {d["prompt"] for d in first["train"]}
    assert first["test"][0]["prompt"].startswith("Answer the question.\nQ: Is ")
    assert first["test"][0]["prompt"].endswith("?\nA:")
    assert bigbench.split("winowhy")["test"] != first["test"]  # each task has its own permutation


def test_training_file_matches_what_the_eval_task_scores(fake_bigbench):
    records = json.loads(bigbench.training_file(["navigate"]).read_text())
    train = bigbench.split("navigate")["train"]
    assert [r["instruction"] for r in records] == [d["prompt"] for d in train]
    assert [r["output"] for r in records] == [" " + d["choices"][d["gold"]] for d in train]
    built = task_manager(False).load(["bb_navigate"])["tasks"]["bb_navigate"]
    doc = next(iter(built.test_docs()))
    assert built.doc_to_text(doc) == doc["prompt"] and built.config.target_delimiter == " "
    assert len(list(built.test_docs())) == bigbench.TEST_EXAMPLES
    assert not {d["prompt"] for d in built.test_docs()} & {r["instruction"] for r in records}


def test_an_edited_task_gets_a_new_training_file(fake_bigbench):
    before = bigbench.training_file(["navigate"])
    path = fake_bigbench / "bigbench" / "benchmark_tasks" / "navigate" / "task.json"
    path.write_text(json.dumps(fake_task("navigate", 800)))
    after = bigbench.training_file(["navigate"])
    assert after != before and len(json.loads(after.read_text())) == 800 - bigbench.TEST_EXAMPLES


def test_unknown_bigbench_task_is_one_line(fake_bigbench):
    with pytest.raises(UserError, match="Did you mean 'navigate'"):
        bigbench.training_file(["navigat"])


def test_without_a_source_the_error_names_both_ways(monkeypatch):
    monkeypatch.delenv(bigbench.SOURCE_ENV, raising=False)
    with pytest.raises(UserError) as error:
        bigbench.task_json("navigate")
    message = str(error.value)
    assert "\n" not in message and bigbench.SOURCE_ENV in message and "data.bigbench" in message
    assert "checkout" in message and bigbench.SDIST_FILENAME in message


def _sdist(tmp_path: Path, name: str) -> Path:
    """A .tar.gz laid out as the bigbench-1.0.0 sdist, holding one task.json."""
    payload = json.dumps(fake_task(name, 700)).encode()
    path = tmp_path / bigbench.SDIST_FILENAME
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo(bigbench._MEMBER.format(name=name))
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    return path


def test_an_sdist_is_used_only_with_the_pinned_sha256(tmp_path, monkeypatch):
    monkeypatch.setenv("OWLORE_BENCH_CACHE", str(tmp_path / "cache"))
    sdist = _sdist(tmp_path, "navigate")
    monkeypatch.setenv(bigbench.SOURCE_ENV, str(sdist))
    with pytest.raises(UserError, match="not the pinned"):
        bigbench.split("navigate")
    assert not list((tmp_path / "cache").rglob("task.json"))  # nothing extracted from unverified bytes
    monkeypatch.setattr(bigbench, "SDIST_SHA256", sha256_of(sdist))  # as if it were the real file
    assert len(bigbench.split("navigate")["train"]) == 700 - bigbench.TEST_EXAMPLES


def test_data_bigbench_names_the_source_for_the_whole_run(fake_bigbench, monkeypatch):
    from owlore_bench.config import DataConfig

    monkeypatch.delenv(bigbench.SOURCE_ENV)
    DataConfig(path="bigbench:navigate", bigbench=str(fake_bigbench))
    assert bigbench.task_json("navigate").is_relative_to(fake_bigbench)
    with pytest.raises(ValueError, match="does not exist"):
        DataConfig(path="bigbench:navigate", bigbench=str(fake_bigbench / "nowhere"))


def test_bigbench_group_lists_the_default_tasks():
    group = yaml.safe_load((tasks_dir() / "bigbench_default" / "_bigbench_default.yaml").read_text())
    assert group["group"] == bigbench.GROUP and group["task"] == list(bigbench.EVAL_TASKS)
    assert all((tasks_dir() / "bigbench_default" / f"{name}.yaml").is_file()
               for name in map(bigbench.eval_task_name, bigbench.CANDIDATES))
