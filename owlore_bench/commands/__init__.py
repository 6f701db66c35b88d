"""One module per `owlore-bench` subcommand (see owlore_bench/cli.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from owlore_bench.errors import UserError


def positive_int(text: str) -> int:
    """argparse `type=` of a count flag: an int >= 1, else argparse's one-line error naming the flag."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1 (got {text!r})") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (got {value})")
    return value


def output_folder(value: str | Path, flag: str = "--out") -> Path:
    """`--out` names a folder in every command; a path that is an existing file is refused before any work."""
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag}: {path} is a file, not a folder; {flag} names a folder to write into, "
                        f"e.g. {flag} {path.with_suffix('')}_out")
    return path


def eval_output_file(value: str | Path) -> Path:
    """eval's rows file: `<folder>/eval.json`, or the path itself when it ends in .json (lm-eval's
    --output_path takes a file that way); checked before the evaluation runs."""
    path = Path(value)
    if path.suffix != ".json" or path.is_dir():
        return output_folder(path, "--out/--output_path") / "eval.json"
    if path.parent.exists() and not path.parent.is_dir():
        raise UserError(f"--out/--output_path: {path.parent} is a file, not a folder")
    return path
