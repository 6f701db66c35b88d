"""Parse LLM-Adapters commonsense records into multiple-choice questions.

An LLM-Adapters record (boolq, piqa, social_i_qa, hellaswag, winogrande, ARC-Easy, ARC-Challenge, openbookqa)
writes its options inside `instruction`:

    Please choose the correct answer to the question: <question>

    Answer1: <text> Answer2: <text> Answer3: <text>

    Answer format: answer1/answer2/answer3

and its gold label in `answer` (or `output`: "the correct answer is answer2"). The option marker is the label
with a capital first letter and a colon ("Solution1:", "Answer1:", "Option1:", "Ending1:"); any count of options
works. A prompt that lists no option texts (boolq: "Answer format: true/false") gets the labels as its options.
A record that cannot be parsed is reported with its index (ParseFailure), never guessed at.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_ANSWER_FORMAT = re.compile(r"\s*Answer format:\s*(?P<labels>\S+)\s*$")
_INTRO = re.compile(r"^Please [^:\n]*:\s*")  # "Please choose the correct answer to the question: "
_OUTPUT_LABEL = re.compile(r"the correct answer is\s+(?P<label>\S+)", re.IGNORECASE)
_NUMBERED_LABEL = re.compile(r"[a-z]+\d+")


@dataclass(frozen=True)
class MultipleChoice:
    """One parsed question. `options` are the option texts; `labels` the answer words (answer1, ...)."""

    question: str
    options: list[str]
    labels: list[str]
    gold: int
    instruction: str


@dataclass(frozen=True)
class ParseFailure:
    """A record the parser could not read: its 0-based index in the file and why."""

    index: int
    reason: str


class RecordError(ValueError):
    """Raised by parse_record with the reason a record is unreadable."""


def parse_record(record: dict) -> MultipleChoice:
    """The question, options and gold index of one LLM-Adapters record; RecordError says what is wrong."""
    instruction = record.get("instruction")
    if not isinstance(instruction, str):
        raise RecordError("no string 'instruction'")
    found = _ANSWER_FORMAT.search(instruction)
    if not found:
        raise RecordError("no 'Answer format: a/b/...' line at the end of the instruction")
    labels = [label.strip().lower() for label in found["labels"].split("/")]
    if len(labels) < 2 or len(set(labels)) != len(labels) or not all(labels):
        raise RecordError(f"answer format {found['labels']!r} does not list 2 or more distinct labels")
    gold = labels.index(_gold_label(record, labels))
    body = instruction[: found.start()]
    if all(_NUMBERED_LABEL.fullmatch(label) for label in labels):
        question, options = _split_options(body, labels)
    else:
        question, options = body, list(labels)
    question = _INTRO.sub("", question.strip(), count=1).strip()
    if not question:
        raise RecordError("empty question")
    return MultipleChoice(question, options, labels, gold, instruction)


def _gold_label(record: dict, labels: list[str]) -> str:
    answer = record.get("answer")
    if not isinstance(answer, str) or not answer.strip():
        match = _OUTPUT_LABEL.search(str(record.get("output", "")))
        if not match:
            raise RecordError("no 'answer' field and no 'the correct answer is <label>' output")
        answer = match["label"]
    answer = answer.strip().lower().rstrip(".")
    if answer not in labels:
        raise RecordError(f"answer {answer!r} is not one of the labels {labels}")
    return answer


def _split_options(body: str, labels: list[str]) -> tuple[str, list[str]]:
    """(text before the first marker, option texts) for markers 'Label1:' ... found in order."""
    starts, ends = [], []
    cursor = 0
    for label in labels:
        match = _marker(label).search(body, cursor)
        if not match:
            raise RecordError(f"option marker '{label.capitalize()}:' not found (after position {cursor})")
        starts.append(match.start())
        ends.append(match.end())
        cursor = match.end()
    options = [body[ends[i]: starts[i + 1] if i + 1 < len(labels) else len(body)].strip() for i in range(len(labels))]
    empty = [labels[i] for i, text in enumerate(options) if not text]
    if empty:
        raise RecordError(f"empty option text for {empty}")
    return body[: starts[0]], options


@functools.lru_cache(maxsize=256)
def _marker(label: str) -> re.Pattern:
    """'Answer2:' (any case) at the start or after whitespace, with the spaces after it."""
    return re.compile(rf"(?:^|(?<=\s)){re.escape(label)}:\s*", re.IGNORECASE)


def parse_records(records: list[dict]) -> tuple[list[MultipleChoice], list[ParseFailure]]:
    """(parsed questions in file order, failures with their record index); nothing is dropped silently."""
    parsed, failures = [], []
    for index, record in enumerate(records):
        try:
            parsed.append(parse_record(record if isinstance(record, dict) else {}))
        except RecordError as error:
            failures.append(ParseFailure(index, str(error)))
    return parsed, failures


def describe_failures(name: str, failures: list[ParseFailure], shown: int = 5) -> str:
    """One line naming how many records of `name` were unreadable and the first few indices and reasons."""
    listed = "; ".join(f"record {f.index}: {f.reason}" for f in failures[:shown])
    more = f"; and {len(failures) - shown} more" if len(failures) > shown else ""
    return f"{name}: {len(failures)} record(s) could not be parsed and are left out of scoring ({listed}{more})"
