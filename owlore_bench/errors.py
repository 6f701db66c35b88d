"""The one exception type for bad user input: the CLI prints its message as one line and exits with code 2."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported by the CLI before anything else: keep it free of pydantic until a config is checked
    from pydantic import ValidationError


class UserError(Exception):
    """Bad input from the user. The message names the field or file and says how to fix it."""


def did_you_mean(name: str, known: list[str]) -> str:
    """' Did you mean 'x'?' for the closest known name, or '' when nothing is close."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def one_line(error: BaseException) -> str:
    """'ErrorType: first line of the message', for status records and logs."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


def validation_error_line(error: ValidationError, prefix: str = "", model: type | None = None) -> str:
    """Condense a pydantic ValidationError into one line: 'field: problem (got value)'. With the validated
    `model` class, an unknown key also gets the closest field name ('Did you mean ...?')."""
    parts = []
    for item in error.errors():
        location = ".".join(str(piece) for piece in (prefix, *item["loc"]) if piece != "")
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            known = _field_names(model, item["loc"][:-1])
            message = "unknown key; remove it or check its spelling." + did_you_mean(str(item["loc"][-1]), known)
        got = item.get("input")
        shown = "" if item["type"] in ("extra_forbidden", "missing") else f" (got {got!r})"
        parts.append(f"{location or 'config'}: {message}{shown}")
    return "; ".join(parts)


def _field_names(model: type | None, path: tuple) -> list[str]:
    """The field names of the (nested) pydantic model at `path` below `model`; [] where that is not a model."""
    for piece in path:
        fields = getattr(model, "model_fields", {})
        if piece not in fields:
            return []
        model = fields[piece].annotation
    return list(getattr(model, "model_fields", {}))
