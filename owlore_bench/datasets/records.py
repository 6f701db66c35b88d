"""Training records from every source, through one dispatch: `read_sources(paths, limit)`.

A source is a JSON array or JSONL of `{"instruction", "input", "output"}` records (LLM-Adapters / Alpaca), LMFlow
JSON (datasets/lmflow.py), GSM8K's `{question, answer}` lines (datasets/gsm8k.py), a hub file or dataset by name
(datasets/hub.py), or a shorthand: `commonsense:<task>` (embedded in the package, datasets/embedded.py),
`bigbench:<tasks>` (your own BIG-bench, datasets/bigbench.py), `data:<path>` (under $OWLORE_BENCH_DATA). Every
record comes out as `{instruction, input, output}` or an LMFlow record (`type` text_only / text2text), with one fact
row per source (its name and the sha256 of the bytes read). Tokenizing and packing them is train/tokenize.py's job.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from owlore_bench.datasets import embedded, gsm8k, hub, lmflow
from owlore_bench.errors import UserError, did_you_mean


def resolve_data_path(path: str | Path) -> Path:
    """A data file path. Three shorthands:
    `commonsense:<task>[/test]` — an embedded commonsense train (or test) set, inside the package;
    `bigbench:default` / `bigbench:task_a,task_b` — the train split of BIG-bench tasks read from your own BIG-bench
    checkout or sdist ($OWLORE_BENCH_BIGBENCH, owlore_bench/datasets/bigbench.py);
    `data:<relative path>` — a file under your data root ($OWLORE_BENCH_DATA, else ./data).
    """
    text = str(path)
    if text.startswith(embedded.SCHEME):
        return embedded.resolve(text)
    if text.startswith("bigbench:"):
        from owlore_bench.datasets import bigbench

        names = text.split(":", 1)[1]
        return bigbench.training_file(None if names in ("", "default") else names.split(","))
    if text.startswith("data:"):
        from owlore_bench.paths import data_root

        return data_root() / text.split(":", 1)[1]
    return Path(path)


def read_sources(paths: str | list[str], limit: int | None = None) -> tuple[list[dict[str, str]], list[dict]]:
    """(records of every file concatenated, one fact row per file for summary.json: its source, sha256 and, for
    the hub, repo / revision / commit)."""
    records, facts = [], []
    for path in _expand_hub_folders([paths] if isinstance(paths, str) else paths):
        more, fact = read_records_and_facts(path, limit)
        records += more
        facts.append(fact)
    return records, facts


def _expand_hub_folders(paths: list[str]) -> list[str]:
    """Each `hf://repo/folder/@rev` replaced by its .json files (hub.folder_files), each `commonsense:a,b` by one
    name per embedded file; other paths unchanged."""
    return [file for path in paths for named in embedded.expand(str(path))
            for file in (hub.folder_files(named) if hub.is_folder_name(named) else [named])]


def read_records(path: str | Path, limit: int | None = None) -> list[dict[str, str]]:
    """Validated records of a JSON array / JSONL / LMFlow file; one clear error naming the file and the record."""
    return read_records_and_facts(path, limit)[0]


def read_records_and_facts(path: str | Path, limit: int | None = None) -> tuple[list[dict[str, str]], dict]:
    text = str(path)
    if text.startswith(hub.DATASET_SCHEME):
        rows, facts = hub.load_rows(text)
        return lmflow.records_from_columns(rows[:limit] if limit else rows, text), facts
    if text.startswith(hub.FILE_SCHEME):
        path, facts = hub.fetch_file(text)
    else:
        path = resolve_data_path(path)
        facts = {"source": text}
    if path.is_dir():
        raise UserError(f"data: {path} is a folder; give a JSON file inside it (e.g. {path}/train.json)")
    if not path.is_file():
        raise UserError(f"data file not found: {path}")
    raw = embedded.read_verified(path) if text.startswith(embedded.SCHEME) else path.read_bytes()
    facts.setdefault("sha256", hashlib.sha256(raw).hexdigest())  # of the records' bytes (decompressed, embedded)
    lines = path.suffix == ".jsonl"
    try:
        content = raw.decode("utf-8")
        records = [json.loads(line) for line in content.splitlines() if line.strip()] if lines else json.loads(content)
    except (ValueError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not valid JSON{'L' if lines else ''} ({error})") from None
    if lmflow.is_lmflow(records):
        return lmflow.lmflow_records(records, str(path), limit), facts
    if gsm8k.is_gsm8k(records):  # {question, answer} lines: lm-eval's gsm8k prompt and target
        return gsm8k.instruction_records(records, str(path), limit), facts
    return _alpaca_records(records, path, limit), facts


def _alpaca_records(records: Any, path: Path, limit: int | None) -> list[dict[str, str]]:
    if not isinstance(records, list) or not records:
        raise UserError(f"{path}: expected a non-empty JSON array of {{instruction, input, output}} records "
                        f"or an LMFlow object {{\"type\": ..., \"instances\": [...]}}")
    records = records[:limit] if limit else records
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise UserError(f"{path}: record {index} is not an object")
        for field in ("instruction", "output"):
            if not isinstance(record.get(field), str) or not record[field]:
                found = ", ".join(map(repr, record)) or "none"
                raise UserError(f"{path}: record {index} has no string '{field}' (needs instruction, output; input "
                                f"optional; found keys: {found}).{did_you_mean(field, [str(k) for k in record])}")
        if not isinstance(record.get("input", ""), str):
            raise UserError(f"{path}: record {index} field 'input' must be a string")
    return [{"instruction": r["instruction"], "input": r.get("input", ""), "output": r["output"]} for r in records]
