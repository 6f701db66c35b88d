"""Prompt templates of instruction records ({"instruction", "input", "output"}): the text before the response.

Training (train/tokenize.py), the local evaluation tasks and MT-Bench answers under the training template all use
these, so a run is evaluated in the format it was trained in.
"""

from __future__ import annotations

from owlore_bench.errors import UserError

ALPACA_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
ALPACA_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)


def render_prompt(record: dict[str, str], template: str) -> str:
    """The prompt text (everything before the response) of one record."""
    if template == "alpaca":
        return (ALPACA_WITH_INPUT if record.get("input") else ALPACA_NO_INPUT).format(**record)
    if template == "plain":
        return record["instruction"] + ("\n" + record["input"] if record.get("input") else "")
    raise UserError(f"data.template: unknown template '{template}'; use 'alpaca' or 'plain'")
