"""`hf:` judge: a local transformers causal LM (anything owlore_bench.models.load_model loads), greedy.

The request is rendered with the tokenizer's chat template as a system and a user message (a template that
refuses the system role gets "system\\n\\nuser" as one user message). A tokenizer without a chat template (e.g.
tiny-llama's byte tokenizer, for tests) gets the plain text "system\\n\\nuser" with its BOS. Requests are decoded
in left-padded batches of `batch_size` (sorted by length), up to max_tokens new tokens each, cut at EOS.
Prompts are not truncated: a judge model needs a context of prompt + max_tokens tokens.
`hf:smollm2-135m` is the offline default; a 135M model is a weak judge, good for plumbing, not for rankings.
The model loads lazily, on the first request: a rerun with nothing left to judge (or a --dry-run, which needs only
the tokenizer) costs no model load.

Option `prefill=rating` starts the judge's reply with "Rating: [[" (the verdict format FastChat's prompts ask
for) and keeps that text in the reply. A small model asked for an explanation first rarely reaches a verdict (in
this project's CPU run SmolLM2-135M gave none in 32 replies of 128 tokens); prefilled, it states a rating in a few
tokens. This goes beyond FastChat's protocol (which lets the judge explain first), so it is part of the judge's
identity and file names, and its scores are not comparable with FastChat judges'.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from owlore_bench.errors import UserError
from owlore_bench.mtbench.judges.base import DEFAULT_MAX_TOKENS, Judge

PLAIN_FORMAT = "plain: system\\n\\nuser"
PREFILLS = {"none": "", "rating": "Rating: [["}


class HFJudge(Judge):
    """A judge running in this process on a transformers model."""

    backend = "hf"
    OPTIONS = {"dtype": str, "device": str, "batch_size": int, "prefill": str}

    def __init__(self, model: str, max_tokens: int = DEFAULT_MAX_TOKENS, dtype: str = "auto", device: str = "auto",
                 batch_size: int = 4, prefill: str = "none"):
        super().__init__(model, max_tokens)
        if (dtype not in ("auto", "bf16", "fp32") or device not in ("auto", "cpu", "cuda") or batch_size < 1
                or prefill not in PREFILLS):
            raise UserError(f"judge hf:{model}: options are dtype=auto|bf16|fp32, device=auto|cpu|cuda, "
                            f"batch_size>=1, prefill=none|rating (got dtype={dtype}, device={device}, "
                            f"batch_size={batch_size}, prefill={prefill})")
        self.prefill = PREFILLS[prefill]
        self.dtype, self.device, self._net = dtype, device, None
        self.tokenizer = judge_tokenizer(model)
        self.batch_size = batch_size
        self.prompt_format = "chat_template" if getattr(self.tokenizer, "chat_template", None) else PLAIN_FORMAT

    @property
    def identity(self) -> dict[str, Any]:
        extra = {"prefill": self.prefill} if self.prefill else {}
        return {**super().identity, "prompt_format": self.prompt_format, **extra}

    def prompt_ids(self, system: str, user: str) -> list[int]:
        """Token ids of one request (see the module docstring)."""
        if self.prompt_format == PLAIN_FORMAT:
            return self.tokenizer(f"{system}\n\n{user}{self.prefill}", add_special_tokens=True)["input_ids"]
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        from jinja2 import TemplateError

        try:
            text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        except TemplateError:  # this template has no system role (it raises from its own template code)
            messages = [{"role": "user", "content": f"{system}\n\n{user}"}]
            text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return self.tokenizer(text + self.prefill, add_special_tokens=False)["input_ids"]

    @property
    def net(self) -> Any:
        """The judge model, loaded on first use (models.load_model)."""
        if self._net is None:
            from owlore_bench.models import load_model

            self._net, _ = load_model(self.model, dtype=self.dtype, device=self.device)
            self._net.eval()
        return self._net

    def complete(self, system: str, user: str) -> str:
        return next(self.complete_many([(system, user)]))[1]

    def complete_many(self, requests: list[tuple[str, str]]) -> Iterator[tuple[int, str]]:
        from owlore_bench.mtbench.generate import decode_batch, stop_token_ids

        if not requests:
            return  # nothing to judge: no model load
        prompts = [self.prompt_ids(system, user) for system, user in requests]
        order = sorted(range(len(prompts)), key=lambda index: len(prompts[index]), reverse=True)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        for start in range(0, len(order), self.batch_size):
            rows = order[start: start + self.batch_size]
            new_ids = decode_batch(self.net, [prompts[index] for index in rows], temperatures=[0.0] * len(rows),
                                   generators=[None] * len(rows), max_new_tokens=self.max_tokens,
                                   stop_ids=stop_token_ids(self.net, self.tokenizer), pad_id=pad_id)
            for index, ids in zip(rows, new_ids):
                yield index, (self.prefill + self.tokenizer.decode(ids, skip_special_tokens=True)).strip()


def judge_tokenizer(name: str) -> Any:
    """The tokenizer of an hf: judge model, without loading its weights (a pad token set as load_model sets it)."""
    from owlore_bench import models

    if name == "tiny-llama":
        tokenizer = models.byte_tokenizer()
    else:
        from transformers import AutoTokenizer

        # models.checkpoint_path: the same folder / GGUF / hub resolution (and one-line errors) load_model uses
        path = models.checkpoint_path(name)
        tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
