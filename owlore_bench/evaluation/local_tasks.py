"""Datasets of the project's local lm-eval tasks (tasks/): the embedded commonsense files, or files under the data
root.

lm-eval YAML cannot know a runtime path, so every local task names a loader here through
`custom_dataset: !function ...` and its folder through `dataset_kwargs`; the loader finds the file when the task is
built. Every document has the same three fields, so the YAML only names them:
`prompt` (doc_to_text), `choices` (doc_to_choice), `gold` (doc_to_target, 0-based).

The six commonsense tasks LLM-Adapters ships (boolq, piqa, social_iqa, arc_easy, arc_challenge, openbookqa) are read
from the package (owlore_bench/datasets/embedded.py); hellaswag, winogrande and MMLU from the data root,
owlore_bench.paths.data_root() ($OWLORE_BENCH_DATA).
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

from owlore_bench.datasets import embedded
from owlore_bench.datasets.commonsense import MultipleChoice, describe_failures, parse_records
from owlore_bench.datasets.templates import render_prompt
from owlore_bench.errors import UserError
from owlore_bench.paths import DATA_ENV, data_root


def _require(path: Path, task: str, hub_task: str | None) -> Path:
    if path.is_file():
        return path
    hub = f", or evaluate the hub task '{hub_task}' with a network" if hub_task else ""
    raise UserError(f"task {task}: local data file {path} not found; set {DATA_ENV} to the folder that holds "
                    f"commonsense/ and mmlu/ (now {data_root()}){hub}")


def _dataset_dict(splits: dict[str, list[dict[str, Any]]]):
    import datasets

    return datasets.DatasetDict({name: datasets.Dataset.from_list(rows) for name, rows in splits.items()})


def choices_doc(question: MultipleChoice, prompt_style: str) -> dict[str, Any]:
    """lm-eval's standard multiple-choice form: the option texts are the continuations (after a space)."""
    if prompt_style == "continuation":  # hellaswag: the question is a sentence start, options end it
        prompt = question.question
    else:
        prompt = f"Question: {question.question}\nAnswer:"
    return {"prompt": prompt, "choices": list(question.options), "gold": question.gold}


def labels_doc(question: MultipleChoice) -> dict[str, Any]:
    """The fine-tuned model's form: the Alpaca prompt of the instruction, continuations 'the correct answer is X'."""
    prompt = render_prompt({"instruction": question.instruction, "input": ""}, "alpaca")
    return {"prompt": prompt, "choices": [f"the correct answer is {label}" for label in question.labels],
            "gold": question.gold}


def commonsense_docs(path: Path, scoring: str, prompt_style: str = "question") -> list[dict[str, Any]]:
    """Documents of one LLM-Adapters JSON file (or embedded .json.gz); unparseable records are reported on stderr
    with their index.

    Parsed once per process and file version (a check before training and the evaluation share the work).
    """
    stat = path.stat()
    return _commonsense_docs(path, stat.st_mtime_ns, stat.st_size, scoring, prompt_style)


@functools.lru_cache(maxsize=64)
def _commonsense_docs(path: Path, _mtime_ns: int, _size: int, scoring: str, prompt_style: str) -> list[dict]:
    raw = embedded.read_verified(path) if path.suffix == ".gz" else path.read_bytes()
    records = json.loads(raw.decode("utf-8"))
    parsed, failures = parse_records(records)
    if failures:
        print(f"owlore-bench: {describe_failures(str(path), failures)}", file=sys.stderr)
    if not parsed:
        raise UserError(f"{path}: no record could be parsed as an LLM-Adapters multiple-choice question")
    if scoring == "labels":
        return [labels_doc(question) for question in parsed]
    return [choices_doc(question, prompt_style) for question in parsed]


def commonsense_file(folder: str, split: str) -> Path:
    """The embedded file of an LLM-Adapters split where the package ships it, else data_root/commonsense/<folder>."""
    if embedded.is_embedded(folder, split):
        return embedded.embedded_file(folder, split)
    return data_root() / "commonsense" / folder / f"{split}.json"


def load_commonsense(folder: str, scoring: str, task: str, prompt_style: str = "question",
                     hub_task: str | None = None, **_metadata: Any):
    """lm-eval custom_dataset: DatasetDict(test, train) of one LLM-Adapters task (commonsense_file).

    `train` is the train set where it exists (the few-shot pool); otherwise the test set itself, from which
    lm-eval's sampler never draws the document being scored.
    """
    if scoring not in ("choices", "labels"):
        raise UserError(f"task {task}: dataset_kwargs.scoring must be 'choices' or 'labels' (got {scoring!r})")
    test = commonsense_docs(_require(commonsense_file(folder, "test"), task, hub_task), scoring, prompt_style)
    train_file = commonsense_file(folder, "train")
    train = commonsense_docs(train_file, scoring, prompt_style) if train_file.is_file() else test
    return _dataset_dict({"test": test, "train": train})


MMLU_LETTERS = ["A", "B", "C", "D"]


def mmlu_docs(path: Path) -> list[dict[str, Any]]:
    """Documents of one MMLU CSV (question,choice0..3,answer with answer 0-3), in lm-eval's mmlu prompt."""
    import pandas as pd

    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    expected = ["question", "choice0", "choice1", "choice2", "choice3", "answer"]
    if list(frame.columns) != expected:
        raise UserError(f"{path}: header must be {','.join(expected)} (got {','.join(frame.columns)})")
    docs = []
    for index, row in frame.iterrows():
        if row["answer"].strip() not in ("0", "1", "2", "3"):
            raise UserError(f"{path}: row {index}: answer must be 0-3 (got {row['answer']!r})")
        options = [row[f"choice{k}"] for k in range(4)]
        lines = [row["question"].strip()] + [f"{letter}. {text}" for letter, text in zip(MMLU_LETTERS, options)]
        docs.append({"prompt": "\n".join(lines) + "\nAnswer:", "choices": list(MMLU_LETTERS),
                     "gold": int(row["answer"])})
    return docs


def load_mmlu(subject: str, task: str, hub_task: str | None = None, **_metadata: Any):
    """lm-eval custom_dataset: DatasetDict(test, dev) of data_root/mmlu/{test,dev}/<subject>_{test,dev}.csv."""
    root = data_root() / "mmlu"
    test = _require(root / "test" / f"{subject}_test.csv", task, hub_task)
    dev = _require(root / "dev" / f"{subject}_dev.csv", task, hub_task)
    return _dataset_dict({"test": mmlu_docs(test), "dev": mmlu_docs(dev)})
