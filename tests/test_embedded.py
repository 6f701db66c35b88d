"""The commonsense tasks embedded in the package: pinned bytes, full parse, no data folder or network needed."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil

import pytest

from owlore_bench.datasets import embedded
from owlore_bench.datasets.commonsense import parse_records
from owlore_bench.datasets.records import read_sources
from owlore_bench.errors import UserError
from owlore_bench.evaluation.harness import task_manager
from owlore_bench.paths import DATA_ENV

TEST_SIZES = {"boolq": 3270, "piqa": 1838, "social_i_qa": 1954, "ARC-Easy": 2376, "ARC-Challenge": 1172,
              "openbookqa": 500}  # LLM-Adapters' published test-set sizes (shared/data/README.md)


def test_every_pinned_file_is_shipped_and_decompresses_to_its_pin():
    for relative, pinned in embedded.EMBEDDED_SHA256.items():
        path = embedded.embedded_dir() / (relative + ".gz")
        assert hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest() == pinned, relative
    shipped = {p.relative_to(embedded.embedded_dir()).as_posix().removesuffix(".gz")
               for p in embedded.embedded_dir().rglob("*.json.gz")}
    assert shipped == set(embedded.EMBEDDED_SHA256)  # nothing unpinned ships


def test_all_11110_test_questions_parse_and_no_record_is_lost():
    sizes = {}
    for relative in embedded.EMBEDDED_SHA256:
        folder, split = relative.removesuffix(".json").split("/")
        records = json.loads(embedded.read_verified(embedded.embedded_file(folder, split)))
        parsed, failures = parse_records(records)
        assert failures == [] and len(parsed) == len(records), relative
        if split == "test":
            sizes[folder] = len(parsed)
    assert sizes == TEST_SIZES and sum(sizes.values()) == 11110


def test_an_altered_file_is_refused_in_one_line(tmp_path, monkeypatch):
    copy = tmp_path / "data"
    shutil.copytree(embedded.embedded_dir(), copy)
    target = copy / "boolq" / "test.json.gz"
    records = json.loads(gzip.decompress(target.read_bytes()))
    records[0]["answer"] = "false" if records[0]["answer"] == "true" else "true"  # one flipped label
    target.write_bytes(gzip.compress(json.dumps(records).encode()))
    monkeypatch.setattr(embedded, "embedded_dir", lambda: copy)
    embedded.read_verified.cache_clear()
    try:
        with pytest.raises(UserError, match="is not the pinned") as error:
            embedded.read_verified(target)
        assert "\n" not in str(error.value) and "reinstall" in str(error.value)
    finally:
        embedded.read_verified.cache_clear()


def test_the_six_tasks_load_without_a_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "no-such-folder"))
    loaded = task_manager(False).load(["commonsense6_labels"])["tasks"]
    counts = {name: len(list(task.test_docs())) for name, task in loaded.items()}
    assert sorted(counts) == sorted(f"{task}_labels" for task in embedded.TASK_FOLDERS)
    assert sum(counts.values()) == 11110


def test_commonsense_training_names_expand_to_the_four_train_sets(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "no-such-folder"))
    records, facts = read_sources("commonsense:default", limit=3)
    assert [fact["source"] for fact in facts] == [f"commonsense:{task}" for task in embedded.TRAIN_TASKS]
    assert [fact["sha256"] for fact in facts] == [embedded.EMBEDDED_SHA256[f"{embedded.TASK_FOLDERS[t]}/train.json"]
                                                  for t in embedded.TRAIN_TASKS]  # the upstream file's own hash
    assert len(records) == 12 and records[0]["output"].startswith("the correct answer is ")
    test_records, _ = read_sources(["commonsense:piqa/test", "commonsense:ARC-Easy"])
    assert len(test_records) == 1838 + 2251


@pytest.mark.parametrize("spec, message", [
    ("commonsense:piqa", "no train set for piqa"),
    ("commonsense:arc_eazy", "Did you mean 'arc_easy'"),
    ("commonsense:boolq/dev", "split must be train or test"),
])
def test_bad_commonsense_names_are_one_line(spec, message):
    with pytest.raises(UserError, match=message) as error:
        read_sources(spec)
    assert "\n" not in str(error.value)


def test_the_notice_names_every_license_and_the_repackaging():
    notice = (embedded.embedded_dir() / "NOTICE").read_text()
    for name, license_name in [("BoolQ", "CC BY-SA 3.0"), ("PIQA", "AFL-3.0"), ("Social IQa", "CC BY 4.0"),
                               ("ARC", "CC BY-SA 4.0"), ("OpenBookQA", "Apache License 2.0"),
                               ("LLM-Adapters", "ODC-By")]:
        assert name in notice and license_name in notice, name
    assert "816657208af4" in notice
