"""LMFlow's dataset JSON: `{"type": "text_only" | "text2text", "instances": [...]}` (the official OwLore data).

`text_only` instances are `{"text": str}`; `text2text` instances are `{"input": str, "output": str}` (the
official OwLore files put the whole Alpaca-style prompt inside `input`). Each record read here keeps its type
under the key "type", so the tokenizer (owlore_bench/train/tokenize.py) treats it the way LMFlow does. LMFlow's
other types (conversation, float_only, image_text) are refused with one line.

An Alpaca record {instruction, input, output} maps to text2text as {"input": the rendered prompt template,
"output": output} (alpaca_as_text2text), which is the shape of the official files.
"""

from __future__ import annotations

from typing import Any

from owlore_bench.errors import UserError

SUPPORTED_TYPES = {"text_only": ("text",), "text2text": ("input", "output")}


def is_lmflow(document: Any) -> bool:
    """An LMFlow dataset is a JSON object with "type" and "instances" (an Alpaca file is a JSON array)."""
    return isinstance(document, dict) and "type" in document and "instances" in document


def lmflow_records(document: dict[str, Any], source: str, limit: int | None = None) -> list[dict[str, str]]:
    """The validated instances of an LMFlow document as records tagged with their type (first `limit` only)."""
    kind = document["type"]
    if kind not in SUPPORTED_TYPES:
        raise UserError(f"{source}: LMFlow dataset type {kind!r} is not supported; supported types: "
                        f"{', '.join(SUPPORTED_TYPES)}")
    instances = document["instances"]
    if not isinstance(instances, list) or not instances:
        raise UserError(f"{source}: 'instances' must be a non-empty list of {kind} instances")
    fields = SUPPORTED_TYPES[kind]
    records = []
    for index, instance in enumerate(instances[:limit] if limit else instances):
        if not isinstance(instance, dict) or not all(isinstance(instance.get(f), str) for f in fields):
            found = ", ".join(map(repr, instance)) if isinstance(instance, dict) else type(instance).__name__
            raise UserError(f"{source}: {kind} instance {index} needs string field(s) {', '.join(fields)} "
                            f"(found: {found or 'none'})")
        records.append({"type": kind, **{f: instance[f] for f in fields}})
    return records


def alpaca_as_text2text(record: dict[str, str], prompt: str) -> dict[str, str]:
    """An Alpaca record as LMFlow text2text: the rendered prompt is the input, the response the output."""
    return {"type": "text2text", "input": prompt, "output": record["output"]}


def records_from_columns(rows: list[dict[str, Any]], source: str) -> list[dict[str, str]]:
    """Rows of a table (a hub dataset) as records: Alpaca columns (instruction, output [, input]), else LMFlow's
    text2text (input, output) or text_only (text)."""
    columns = set(rows[0]) if rows else set()
    if {"instruction", "output"} <= columns:
        return [{"instruction": str(r["instruction"]), "input": str(r.get("input") or ""),
                 "output": str(r["output"])} for r in rows]
    for kind, fields in sorted(SUPPORTED_TYPES.items(), key=lambda item: -len(item[1])):
        if set(fields) <= columns:
            return lmflow_records({"type": kind, "instances": rows}, source)
    raise UserError(f"{source}: columns {', '.join(sorted(columns)) or 'none'} are neither Alpaca "
                    f"(instruction, input, output) nor LMFlow text2text (input, output) / text_only (text)")
