"""`mtbench judge --dry-run`: what judging would send, before a single request: requests, prompt tokens, cost.

Requests are the judgments missing from the judge's file (as a real run would send them, repeats included).
Prompt tokens (system + user message text, without the few tokens of chat framing a server adds) are counted
with the judge's own tokenizer for hf:, with tiktoken for openai: where it is installed (the model's encoding,
else o200k_base), else as characters / 4 and said to be approximate. Reply tokens are at most max_tokens per
request, so with --price-in/--price-out (currency per 1M tokens) the cost is prompt cost + at most the reply cost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from owlore_bench.mtbench.judges import Judge, make_judge, parse_spec
from owlore_bench.mtbench.judging import (
    existing_judgments,
    judge_identity,
    judgment_key,
    judgments_path,
    pending_requests,
)
from owlore_bench.mtbench.questions import Reference, load_judge_prompts

CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text with BPE tokenizers (no tokenizer at hand)


def dry_run_judge(spec: str, max_tokens: int) -> Judge:
    """The judge of `spec` without what a dry run must not need: no API key (openai:), no model weights (hf:
    loads only its tokenizer until the first request)."""
    backend, model, options = parse_spec(spec)
    if backend == "openai":
        from owlore_bench.mtbench.judges.openai_judge import OpenAIJudge

        return OpenAIJudge(model, max_tokens, **{**options, "api_key_env": "none"})
    return make_judge(spec, max_tokens)


def token_counter(judge: Judge) -> tuple[Any, str]:
    """(count(system, user) -> tokens, how they are counted)."""
    if judge.backend == "hf":
        return (lambda system, user: len(judge.prompt_ids(system, user))), f"the judge's tokenizer ({judge.model})"

    def approximate(system: str, user: str) -> int:
        return (len(system) + len(user)) // CHARS_PER_TOKEN

    try:
        import tiktoken
    except ImportError:
        return approximate, f"approximate: characters / {CHARS_PER_TOKEN} (pip install tiktoken for exact counts)"
    try:
        try:
            encoding = tiktoken.encoding_for_model(judge.model)
        except KeyError:  # a model tiktoken does not know (a local server's): OpenAI's current encoding
            encoding = tiktoken.get_encoding("o200k_base")
    except Exception as error:  # noqa: BLE001 — tiktoken downloads its encodings once; offline that fails
        return approximate, (f"approximate: characters / {CHARS_PER_TOKEN}; tiktoken could not load an encoding "
                             f"({type(error).__name__})")
    return (lambda system, user: len(encoding.encode(system)) + len(encoding.encode(user))), \
        f"tiktoken {encoding.name}"


def judging_plan(answers: list[dict[str, Any]], questions: list[dict[str, Any]], judge: Judge,
                 reference: Reference, folder: str | Path, repeats: int = 1) -> dict[str, Any]:
    """{requests, prompt_tokens, max_reply_tokens, counted_with} of what judging `answers` into `folder` sends."""
    done = {judgment_key(row) for row in
            existing_judgments(judgments_path(folder, judge, reference), judge_identity(judge, reference))}
    todo = pending_requests(answers, questions, load_judge_prompts(), reference.answers, done, repeats)
    count, how = token_counter(judge)
    return {"requests": len(todo), "prompt_tokens": sum(count(p.system, p.user) for _, p in todo),
            "max_reply_tokens": len(todo) * judge.max_tokens, "counted_with": how}


def describe_plan(plan: dict[str, Any], price_in: float | None, price_out: float | None) -> str:
    """The dry run's lines: requests, tokens and, given prices per 1M tokens, the estimated cost."""
    lines = [f"requests: {plan['requests']}",
             f"prompt tokens: {plan['prompt_tokens']} ({plan['counted_with']})",
             f"reply tokens: at most {plan['max_reply_tokens']} (max_tokens per request)"]
    if price_in is not None or price_out is not None:
        cost_in = plan["prompt_tokens"] * (price_in or 0.0) / 1e6
        cost_out = plan["max_reply_tokens"] * (price_out or 0.0) / 1e6
        lines.append(f"estimated cost: {cost_in:.4f} for prompts + at most {cost_out:.4f} for replies = at most "
                     f"{cost_in + cost_out:.4f} (prices per 1M tokens: in {price_in or 0:g}, out {price_out or 0:g})")
    return "\n".join(lines)
