"""`openai:` judge: any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM `vllm serve`, llama.cpp
`llama-server`, Ollama, TGI), through the `openai` client, imported only when this backend is used.

Requests are FastChat's: messages [system, user], temperature 0, max_tokens (default 2048), n 1. Up to
`concurrency` requests run at once (a thread pool). Retries are the openai client's own (`retries` is its
max_retries): a 408, 409, 429, a 5xx, a connection error or a timeout is retried with its exponential backoff
(0.5 s doubling to at most 8 s, with jitter, or the server's Retry-After); other HTTP errors (401, 404, 400) are not.
When the retries are spent, or the key variable is missing, the run stops with one UserError line naming the
URL or the variable; judgments already written stay, so a rerun judges only what is missing.

OpenAI's reasoning models (the o1/o3/o4 and gpt-5 families, REASONING_MODELS) refuse `max_tokens` and take
`max_completion_tokens`, and refuse any temperature but their fixed 1: for those names the judge sends
max_completion_tokens and no temperature (the identity records 1.0, what they sample at). For any other model
whose server answers HTTP 400 naming max_tokens it retries that request once with max_completion_tokens (and
keeps using it).
Azure OpenAI: `api_version=...` (and `deployment=...`, default the model name) switch to openai.AzureOpenAI with
base_url as the azure_endpoint (https://NAME.openai.azure.com); the key comes from $AZURE_OPENAI_API_KEY unless
api_key_env says otherwise.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any

from owlore_bench.errors import UserError
from owlore_bench.mtbench.judges.base import DEFAULT_MAX_TOKENS, OPENAI_URL, Judge

NO_KEY = "none"  # api_key_env=none: a local server that wants no key
# OpenAI's reasoning models (o1, o1-mini, o3, o3-mini, o4-mini, gpt-5*). Their chat completions answer HTTP 400
# to `max_tokens` ("Unsupported parameter: 'max_tokens' ... Use 'max_completion_tokens' instead") and to any
# temperature but 1 ("Unsupported value: 'temperature' does not support 0 with this model. Only the default (1)
# value is supported"; o3-mini even to temperature itself: "Unsupported parameter: 'temperature'"), so for them
# the judge sends max_completion_tokens and no temperature at all.
REASONING_MODELS = re.compile(r"^(o\d|gpt-5)")


class OpenAIJudge(Judge):
    """A judge behind an OpenAI-compatible /v1/chat/completions endpoint."""

    backend = "openai"
    OPTIONS = {"base_url": str, "api_key_env": str, "concurrency": int, "timeout": float, "retries": int,
               "api_version": str, "deployment": str}

    def __init__(self, model: str, max_tokens: int = DEFAULT_MAX_TOKENS, base_url: str = OPENAI_URL,
                 api_key_env: str | None = None, concurrency: int = 8, timeout: float = 60.0,
                 retries: int = 5, api_version: str | None = None, deployment: str | None = None):
        """`timeout`: seconds per request; `retries`: the client's max_retries; `api_version`/`deployment`: Azure
        OpenAI (see the module docstring)."""
        super().__init__(model, max_tokens)
        if deployment and not api_version:
            raise UserError(f"judge openai:{model}: deployment= is Azure OpenAI's and needs api_version= too")
        api_key_env = api_key_env or ("AZURE_OPENAI_API_KEY" if api_version else "OPENAI_API_KEY")
        for name, value, low in (("concurrency", concurrency, 1), ("timeout", timeout, 1e-3), ("retries", retries, 0)):
            if value < low:
                raise UserError(f"judge openai:{model}: option {name} must be >= {low:g} (got {value:g})")
        try:
            import openai
        except ImportError:
            raise UserError("the openai: judge needs the openai package: pip install openai") from None
        if api_key_env.lower() == NO_KEY:
            key = "none"  # the client insists on some key; local servers ignore it
        else:
            key = os.environ.get(api_key_env, "")
            if not key:
                raise UserError(f"judge openai:{model}: environment variable {api_key_env} is not set; export it, "
                                f"or add ?api_key_env=none for a local server that needs no key")
        self.base_url, self.api_key_env = base_url.rstrip("/"), api_key_env
        self.concurrency, self.timeout, self.retries = concurrency, timeout, retries
        self._openai = openai
        self.api_version, self.deployment = api_version, (deployment or model) if api_version else None
        if api_version:
            self._client = openai.AzureOpenAI(api_key=key, azure_endpoint=self.base_url, api_version=api_version,
                                              timeout=timeout, max_retries=retries)
        else:
            self._client = openai.OpenAI(api_key=key, base_url=self.base_url, timeout=timeout, max_retries=retries)
        self.reasoning = bool(REASONING_MODELS.match(model.rsplit("/", 1)[-1].lower()))
        self.token_field = "max_completion_tokens" if self.reasoning else "max_tokens"
        # FastChat's temperature 0, except where the API allows only its default (REASONING_MODELS)
        self._sampling: dict[str, float] = {} if self.reasoning else {"temperature": 0}

    @property
    def identity(self) -> dict[str, Any]:
        azure = {"api_version": self.api_version, "deployment": self.deployment} if self.api_version else {}
        temperature = {"temperature": 1.0} if self.reasoning else {}  # the only one the API lets them use
        return {**super().identity, "base_url": self.base_url, **temperature, **azure}

    def _create(self, messages: list[dict[str, str]]) -> Any:
        """One chat completion; a 400 naming max_tokens switches to max_completion_tokens and is retried once."""
        field = self.token_field
        try:
            return self._client.chat.completions.create(model=self.deployment or self.model, messages=messages,
                                                        n=1, **self._sampling, **{field: self.max_tokens})
        except self._openai.BadRequestError as error:
            if field != "max_tokens" or "max_tokens" not in str(error):
                raise
        self.token_field = "max_completion_tokens"
        return self._client.chat.completions.create(model=self.deployment or self.model, messages=messages, n=1,
                                                    **self._sampling, max_completion_tokens=self.max_tokens)

    def complete(self, system: str, user: str) -> str:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
        try:
            response = self._create(messages)  # the client has retried what it retries (module docstring)
        except self._openai.APIError as error:
            raise self._as_user_error(error, self.retries + 1 if self._retried(error) else 1) from None
        return response.choices[0].message.content or ""

    def _retried(self, error: Exception) -> bool:
        """Whether the client retried this error before giving up (its own rule, for the message's try count)."""
        openai = self._openai
        if isinstance(error, openai.APIConnectionError):  # timeouts too
            return True
        return isinstance(error, openai.APIStatusError) and (error.status_code in (408, 409, 429)
                                                            or error.status_code >= 500)

    def _as_user_error(self, error: Exception, tries: int) -> UserError:
        openai, where = self._openai, f"judge openai:{self.model} at {self.base_url}"
        tail = "; answers and finished judgments are kept, a rerun judges only what is missing"
        if isinstance(error, openai.APITimeoutError):
            return UserError(f"{where}: no reply within {self.timeout:g} s ({tries} tries); check the server or "
                             f"raise ?timeout={tail}")
        if isinstance(error, openai.APIConnectionError):
            return UserError(f"{where} is unreachable ({tries} tries); start the server or fix base_url{tail}")
        if isinstance(error, openai.APIStatusError):
            message = str(getattr(error, "message", error)).splitlines()[0] if str(error) else ""
            return UserError(f"{where}: HTTP {error.status_code} after {tries} tries ({message}){tail}")
        return UserError(f"{where}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")

    def complete_many(self, requests: list[tuple[str, str]]) -> Iterator[tuple[int, str]]:
        """Up to `concurrency` requests in flight; (index, reply) as each finishes. After a failure no new request
        starts; the ones in flight are awaited and their replies yielded (they are paid for), then it raises."""
        queue, pending, failure = iter(enumerate(requests)), {}, None
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="judge")
        try:
            while True:
                while failure is None and len(pending) < self.concurrency:
                    index, request = next(queue, (None, None))
                    if request is None:
                        break
                    pending[pool.submit(self.complete, *request)] = index
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    index = pending.pop(future)
                    if future.exception() is None:
                        yield index, future.result()
                    else:
                        failure = failure or future.exception()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        if failure is not None:
            raise failure
