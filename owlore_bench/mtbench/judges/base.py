"""The Judge base class and its defaults (a leaf module: the backends import it, and the package imports them)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from owlore_bench.errors import UserError

DEFAULT_MAX_TOKENS = 2048  # FastChat's judge max_tokens
OPENAI_URL = "https://api.openai.com/v1"


class Judge:
    """Base class of the judge backends. A backend implements `complete` and sets `identity`; it may override
    `complete_many` to run requests concurrently or in batches."""

    backend: str = ""
    #: Options a spec may set after '?', with their types (checked by parse_spec).
    OPTIONS: dict[str, type] = {}

    def __init__(self, model: str, max_tokens: int = DEFAULT_MAX_TOKENS):
        if max_tokens < 1:
            raise UserError(f"judge max_tokens: must be >= 1 (got {max_tokens})")
        self.model = model
        self.max_tokens = max_tokens

    @property
    def identity(self) -> dict[str, Any]:
        """Who judges: backend, model, base_url (None when local), temperature, max_tokens (+ backend extras).
        Recorded in every judgment and score file; judgments of different identities are never mixed."""
        return {"backend": self.backend, "model": self.model, "base_url": None, "temperature": 0.0,
                "max_tokens": self.max_tokens}

    def complete(self, system: str, user: str) -> str:
        """The judge's reply to one system + user message pair (temperature 0)."""
        raise NotImplementedError

    def complete_many(self, requests: list[tuple[str, str]]) -> Iterator[tuple[int, str]]:
        """(index, reply) for each (system, user) request, in any order, as each finishes."""
        for index, (system, user) in enumerate(requests):
            yield index, self.complete(system, user)
