"""GSM8K (openai/grade-school-math JSONL: one {"question", "answer"} per line, answer ending in `#### <number>`).

Two readers of the same files:
- evaluation: `load_gsm8k` is the lm-eval custom_dataset of the local task `gsm8k_local` (tasks/gsm8k_local/),
  DatasetDict(test, train) of data_root/gsm8k/{test,train}.jsonl with the records as they are, so lm-eval's own
  gsm8k prompt, few-shot sampling, filters and exact_match apply unchanged;
- training: `instruction_records` turns each record into an instruction record in lm-eval's gsm8k format,
  instruction `Question: <question>\\nAnswer:` and output ` <answer>` (the worked solution, calculator annotations
  and `#### <number>` kept, as in lm-eval's few-shot examples), so `data.template: plain` trains on exactly the
  text the evaluation prompts with. datasets/records.py turns any JSON / JSONL file of such records into these
  (`is_gsm8k`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from owlore_bench.errors import UserError
from owlore_bench.paths import DATA_ENV, data_root

FIELDS = ("question", "answer")
PROMPT = "Question: {question}\nAnswer:"  # lm-eval gsm8k.yaml doc_to_text
TARGET_DELIMITER = " "  # lm-eval's default target_delimiter between prompt and answer


def read_gsm8k(path: Path, limit: int | None = None) -> list[dict[str, str]]:
    """The {question, answer} records of a GSM8K JSONL file (first `limit`); one line naming a bad record."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as error:
                raise UserError(f"{path}: line {number} is not JSON ({error})") from None
    return checked_records(rows, str(path), limit)


def checked_records(rows: Any, source: str, limit: int | None = None) -> list[dict[str, str]]:
    """{question, answer} copies of the first `limit` rows; one UserError line naming the first bad record."""
    if not isinstance(rows, list) or not rows:
        raise UserError(f"{source}: no GSM8K record (one {{\"question\", \"answer\"}} object per line)")
    rows = rows[:limit] if limit else rows
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or not all(isinstance(row.get(f), str) and row[f] for f in FIELDS):
            found = ", ".join(map(repr, row)) if isinstance(row, dict) else type(row).__name__
            raise UserError(f"{source}: record {index} needs non-empty string fields question and answer "
                            f"(found: {found})")
    return [{"question": row["question"], "answer": row["answer"]} for row in rows]


def is_gsm8k(rows: Any) -> bool:
    """Whether parsed JSON / JSONL rows are GSM8K records: the first has question and answer, no instruction."""
    first = rows[0] if isinstance(rows, list) and rows else None
    return isinstance(first, dict) and all(field in first for field in FIELDS) and "instruction" not in first


def instruction_records(rows: Any, source: str, limit: int | None = None) -> list[dict[str, str]]:
    """Training records {instruction, input, output} in lm-eval's gsm8k format (see the module docstring)."""
    return [{"instruction": PROMPT.format(question=r["question"]), "input": "",
             "output": TARGET_DELIMITER + r["answer"]} for r in checked_records(rows, source, limit)]


def load_gsm8k(task: str = "gsm8k_local", **_metadata: Any):
    """lm-eval custom_dataset: DatasetDict(test, train) of data_root/gsm8k/{test,train}.jsonl (train: few-shot)."""
    import datasets

    splits = {}
    for split in ("test", "train"):
        path = data_root() / "gsm8k" / f"{split}.jsonl"
        if not path.is_file():
            raise UserError(f"task {task}: local data file {path} not found; set {DATA_ENV} to the folder that "
                            f"holds gsm8k/ (now {data_root()}), or evaluate the hub task 'gsm8k' with a network")
        splits[split] = datasets.Dataset.from_list(read_gsm8k(path))
    return datasets.DatasetDict(splits)
