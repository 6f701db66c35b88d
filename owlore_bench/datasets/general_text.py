"""Held-out general English text for the forgetting measure (owlore_bench.evaluation.forgetting).

`builtin` is general_text.txt beside this module: the opening of Conan Doyle's "A Scandal in Bohemia" (Project
Gutenberg #1661, public domain; ~25k characters, provenance in that file's header). Any other value is the path of
a UTF-8 text file; `data:<relative path>` is a file under the benchmark data root. The measured text of the
built-in file excludes its header (the leading '# ' lines and the blank line after them).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from owlore_bench.errors import UserError

BUILTIN = "builtin"
BUILTIN_FILE = Path(__file__).resolve().parent / "general_text.txt"
HEADER_PREFIX = "# "


@dataclass(frozen=True)
class GeneralText:
    """A text to measure: its name (`builtin` or the path as given), the text, and the sha256 of its UTF-8 bytes."""

    name: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def strip_header(text: str) -> str:
    """The text after a leading block of '# ' lines (and the blank line that ends it)."""
    lines = text.split("\n")
    start = 0
    while start < len(lines) and lines[start].startswith(HEADER_PREFIX):
        start += 1
    if start and start < len(lines) and not lines[start].strip():
        start += 1
    return "\n".join(lines[start:])


def load_general_text(source: str, field: str = "eval.forgetting") -> GeneralText:
    """The text named by `source` ('builtin', a path, or 'data:<relative path>'); one UserError line otherwise."""
    if source == BUILTIN:
        return GeneralText(BUILTIN, strip_header(BUILTIN_FILE.read_text(encoding="utf-8")))
    path = Path(source)
    if source.startswith("data:"):
        from owlore_bench.paths import data_root

        path = data_root() / source.split(":", 1)[1]
    if not path.is_file():
        raise UserError(f"{field}: text file {path} not found; give a UTF-8 text file, '{BUILTIN}' or null (off)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{field}: {path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    if not text.strip():
        raise UserError(f"{field}: {path} is empty; give a file with some general text, or '{BUILTIN}'")
    return GeneralText(source, text)
