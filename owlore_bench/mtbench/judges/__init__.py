"""The judge seam: anything that turns (system message, user message) into a reply, and says who it is.

A judge spec is `BACKEND:MODEL`, optionally followed by `?key=value&key=value` options:

    openai:gpt-4                                        OpenAI itself, key in $OPENAI_API_KEY
    openai:Qwen/Qwen2.5-7B-Instruct?base_url=http://127.0.0.1:8000/v1&api_key_env=none
                                                        vLLM / llama.cpp llama-server / Ollama / TGI, no key
    openai:gpt-4o?api_key_env=MY_KEY&concurrency=4&timeout=120&retries=6
    openai:gpt-4o?base_url=https://NAME.openai.azure.com&api_version=2024-06-01&deployment=DEP   Azure OpenAI
    hf:smollm2-135m                                     a local transformers causal LM (the offline default)
    hf:Qwen/Qwen2.5-0.5B-Instruct?dtype=fp32&device=cpu&batch_size=4

The model name runs from the first ':' to the first '?' (so 'org/name' and Ollama's 'llama3:8b' work).
Options of openai: base_url, api_key_env ('none' for a server without a key), concurrency, timeout (s),
retries (the openai client's max_retries, with its own backoff), api_version + deployment (Azure OpenAI: base_url
is the azure endpoint). Options of hf: dtype, device, batch_size, prefill. Every judge decodes at temperature 0
and writes at most `max_tokens` tokens per reply (FastChat: 2048).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from owlore_bench.errors import UserError, did_you_mean
from owlore_bench.mtbench.judges.base import DEFAULT_MAX_TOKENS, OPENAI_URL, Judge  # noqa: F401 (re-exported)

BACKENDS = ("openai", "hf")
SPEC_FORMS = "openai:MODEL[?base_url=URL&api_key_env=VAR&...] or hf:MODEL[?dtype=..&device=..]"


def _backend_class(backend: str) -> type[Judge]:
    if backend == "openai":
        from owlore_bench.mtbench.judges.openai_judge import OpenAIJudge

        return OpenAIJudge
    from owlore_bench.mtbench.judges.hf_judge import HFJudge

    return HFJudge


def parse_spec(spec: str) -> tuple[str, str, dict[str, Any]]:
    """(backend, model, options) of a judge spec, or one line naming the spec, the problem and the forms."""
    backend, sep, rest = spec.partition(":")
    model, _, query = rest.partition("?")
    if not sep or backend not in BACKENDS:
        hint = did_you_mean(backend, list(BACKENDS)) if sep else ""
        raise UserError(f"judge spec {spec!r}: unknown backend {backend!r}; backends: {', '.join(BACKENDS)}, "
                        f"written {SPEC_FORMS}{hint}")
    if not model:
        raise UserError(f"judge spec {spec!r}: no model name after '{backend}:' ({SPEC_FORMS})")
    allowed = _backend_class(backend).OPTIONS
    options: dict[str, Any] = {}
    for item in filter(None, query.split("&")):
        key, eq, value = item.partition("=")
        if key not in allowed or not eq:
            raise UserError(f"judge spec {spec!r}: unknown option {item!r}; {backend}: takes "
                            f"{', '.join(f'{name}=' for name in allowed)}{did_you_mean(key, list(allowed))}")
        try:
            options[key] = allowed[key](value)
        except ValueError:
            raise UserError(f"judge spec {spec!r}: option {key}={value!r} must be a {allowed[key].__name__}") from None
    return backend, model, options


def make_judge(spec: str, max_tokens: int = DEFAULT_MAX_TOKENS) -> Judge:
    """The judge a spec names (see the module docstring), ready to call."""
    backend, model, options = parse_spec(spec)
    return _backend_class(backend)(model, max_tokens=max_tokens, **options)


def judge_slug(identity: dict[str, Any]) -> str:
    """A file-name-safe name for a judge identity: backend-model, plus a short hash of the base URL when there
    is one other than OpenAI's, plus -max<N> when max_tokens is not FastChat's 2048. Different judges → different
    files."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{identity['backend']}-{identity['model']}").strip("-")
    if identity.get("base_url") not in (None, OPENAI_URL):
        slug += "-" + hashlib.sha1(str(identity["base_url"]).encode()).hexdigest()[:8]
    if identity.get("prefill"):
        slug += "-prefill"
    if identity.get("max_tokens", DEFAULT_MAX_TOKENS) != DEFAULT_MAX_TOKENS:
        slug += f"-max{identity['max_tokens']}"
    return slug


def judge_heading(slug: str, identity: dict[str, Any] | None) -> str:
    """How every table title and heading names a judge: its slug (the name of its judgment, score and radar files,
    and the MT-Bench column's label: `MT-Bench (<slug>)`), then what it is when known (describe)."""
    return f"{slug}: {describe(identity)}" if identity and "backend" in identity else slug


def describe(identity: dict[str, Any]) -> str:
    """One line for table captions: 'openai:gpt-4 @ https://… (temperature 0, max_tokens 2048)'."""
    where = f" @ {identity['base_url']}" if identity.get("base_url") else ""
    prefill = f", reply prefilled with {identity['prefill']!r}" if identity.get("prefill") else ""
    return (f"{identity['backend']}:{identity['model']}{where} (temperature {identity.get('temperature', 0):g}, "
            f"max_tokens {identity.get('max_tokens')}{prefill})")
