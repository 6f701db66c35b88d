"""MT-Bench answer generation: both turns of each question, batched, seeded, resumable, in FastChat's format.

As fastchat/llm_judge/gen_model_answer.py: the temperature comes from the question's category (writing/roleplay
0.7; extraction/math/coding/reasoning 0.0; stem/humanities 0.1; any other 0.7) and below 1e-4 decoding is greedy;
turn 2 is prompted with turn 1's question and (stripped) answer in context; an answer is cut at the first EOS,
decoded without special tokens and stripped. Beyond FastChat: questions are decoded in left-padded batches, and
each (question, turn) samples from its own torch.Generator seeded from (seed, question_id, turn), so an answer
does not depend on which other questions share its batch, nor on a resume.
Each token is picked with the logits processors `model.generate` would build for FastChat's call (the model's
generation_config filled with transformers' defaults, so top_k 50 applies when sampling; generation_processors).

Prompt formats (chat, alpaca, plain, fastchat:NAME) and their texts: templates.py. Under a FastChat template an
answer also ends and is cleaned as gen_model_answer.py does it (templates.FastChatStops).
"""

from __future__ import annotations

import json
import time
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from owlore_bench.errors import UserError
from owlore_bench.mtbench.questions import select_questions
from owlore_bench.mtbench.templates import (  # noqa: F401 (conversation_prompt, encode_prompt: re-exported)
    FASTCHAT,
    FastChatStops,
    check_prompt_format,
    conversation_prompt,
    encode_prompt,
    train_format,
)
from owlore_bench.results import drop_torn_tail, read_json, read_jsonl, write_json_atomic, write_jsonl_atomic

# fastchat/llm_judge/common.py temperature_config; other categories get DEFAULT_TEMPERATURE.
TEMPERATURES = {"writing": 0.7, "roleplay": 0.7, "extraction": 0.0, "math": 0.0, "coding": 0.0, "reasoning": 0.0,
                "stem": 0.1, "humanities": 0.1, "arena-hard-200": 0.0}
DEFAULT_TEMPERATURE = 0.7
GREEDY_BELOW = 1e-4
resolve_prompt_format = train_format  # the name the runner and older callers use
# answers.meta.json fields that must match for a rerun to continue an answers file.
RESUME_KEYS = ("model_id", "prompt_format", "max_new_tokens", "seed")


def category_temperature(category: str) -> float:
    return TEMPERATURES.get(category, DEFAULT_TEMPERATURE)


def stop_token_ids(model: Any, tokenizer: Any) -> set[int]:
    """EOS ids of the tokenizer and of the model's generation config (which may list several)."""
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, list) else [configured])
    return {token for token in ids if token is not None}


def _seed_for(seed: int, question_id: int, turn: int) -> int:
    return zlib.crc32(f"{seed}:{question_id}:{turn}".encode())


def generation_processors(model: Any, temperature: float, max_new_tokens: int, prompt_length: int) -> Any:
    """The LogitsProcessorList that `model.generate(do_sample=temperature >= 1e-4, temperature=temperature,
    max_new_tokens=...)` (FastChat's call) builds: the model's generation_config filled with transformers'
    defaults exactly as generate fills them (top_k 50 where neither sets it), then generate's own builder, so
    repetition_penalty, min_p, typical_p, no_repeat_ngram_size and the sampling warpers all apply."""
    config, _ = model._prepare_generation_config(None, do_sample=temperature >= GREEDY_BELOW,
                                                 temperature=temperature, max_new_tokens=max_new_tokens)
    return model._get_logits_processor(config, input_ids_seq_length=prompt_length,
                                       device=next(model.parameters()).device)


def _pick_tokens(logits: torch.Tensor, sequences: list[torch.Tensor], temperatures: list[float],
                 generators: list[torch.Generator | None], processors: list[Any]) -> torch.Tensor:
    """Next token per row, as generate picks it: the row's processors applied to its logits given the row's
    own tokens so far (prompt + answer, no padding: what the row would see alone); then argmax below
    GREEDY_BELOW, else a sample from the softmax drawn with the row's own generator."""
    picked = torch.empty(len(temperatures), dtype=torch.long, device=logits.device)
    for row, temperature in enumerate(temperatures):
        scores = processors[row](sequences[row][None, :], logits[row: row + 1])
        if temperature < GREEDY_BELOW:
            picked[row] = scores[0].argmax()
        else:
            picked[row] = torch.multinomial(torch.softmax(scores[0], dim=-1), 1, generator=generators[row])[0]
    return picked


def _left_padded(prompts: list[list[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
        mask[row, width - len(prompt):] = 1
    return ids.to(device), mask.to(device)


def _cache_options(model: Any) -> dict[str, Any]:
    """Forward kwargs for cached decoding: a fresh DynamicCache (updated in place by every forward) under the
    argument name this transformers version uses, and logits for the last position only (a full-vocabulary row
    per prompt token would cost prompt_len x vocab floats for nothing)."""
    import inspect

    from transformers import DynamicCache

    accepted = inspect.signature(model.forward).parameters
    try:
        cache = DynamicCache(config=model.config)
    except TypeError:  # transformers < 4.56 builds it without the config
        cache = DynamicCache()
    options: dict[str, Any] = {"cache" if "cache" in accepted else "past_key_values": cache}
    for name in ("logits_to_keep", "num_logits_to_keep"):
        if name in accepted:
            options[name] = 1
            break
    return options


@torch.no_grad()
def decode_batch(model: Any, prompts: list[list[int]], *, temperatures: list[float],
                 generators: list[torch.Generator | None], max_new_tokens: int, stop_ids: set[int],
                 pad_id: int, finished_when: Callable[[list[int]], bool] | None = None) -> list[list[int]]:
    """New token ids for each prompt (left-padded into one batch), cut before the first stop id.

    `finished_when(new_ids)`, if given, ends a row early once it returns True (FastChatStops.finished: more
    tokens could not change the answer text).

    Position ids count only real tokens (a padded row sees the same positions as alone) and the attention mask
    hides the padding, so under greedy decoding a batched row reproduces its unbatched output. One forward pass
    per new token over a KV cache; finished rows ride along until every row is done (that is the batch cost).
    """
    device = next(model.parameters()).device
    ids, mask = _left_padded(prompts, pad_id, device)
    # Real tokens count from 0 in every row. (RoPE models would not notice a shift, as attention sees only relative
    # positions; models with absolute position embeddings would.) The mask is what keeps padding out.
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    options = _cache_options(model)
    processors = [generation_processors(model, temperature, max_new_tokens, len(prompt))
                  for temperature, prompt in zip(temperatures, prompts)]
    sequences = [torch.tensor(prompt, dtype=torch.long, device=device) for prompt in prompts]
    outputs: list[list[int]] = [[] for _ in prompts]
    finished = [False] * len(prompts)
    for _ in range(max_new_tokens):
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **options)
        tokens = _pick_tokens(out.logits[:, -1, :].float(), sequences, temperatures, generators, processors)
        sequences = [torch.cat([sequence, token[None]]) for sequence, token in zip(sequences, tokens)]
        for row, token in enumerate(tokens.tolist()):  # .tolist() is a device sync: one per step
            if finished[row]:
                continue
            if token in stop_ids:
                finished[row] = True
            else:
                outputs[row].append(token)
                finished[row] = finished_when is not None and finished_when(outputs[row])
        if all(finished):
            break
        ids = tokens[:, None]
        mask = torch.cat([mask, mask.new_ones((len(prompts), 1))], dim=-1)
        positions = positions[:, -1:] + 1
    return outputs


def _answer_turns(model: Any, tokenizer: Any, batch: list[dict[str, Any]], *, prompt_format: str, seed: int,
                  max_new_tokens: int, stats: dict[str, int]) -> list[list[str]]:
    """Answers (stripped text) to every turn of a batch of questions; turn k+1 sees turns 1..k."""
    answers: list[list[str]] = [[] for _ in batch]
    device = next(model.parameters()).device
    stop_ids = stop_token_ids(model, tokenizer)
    fastchat = FastChatStops(prompt_format.partition(":")[2], tokenizer) if prompt_format.startswith(FASTCHAT + ":") \
        else None
    if fastchat is not None:
        stop_ids |= fastchat.stop_token_ids
    for turn in range(1, max(len(q["turns"]) for q in batch) + 1):
        rows = [index for index, q in enumerate(batch) if len(q["turns"]) >= turn]
        prompts, temperatures, generators = [], [], []
        for index in rows:
            question = batch[index]
            text = conversation_prompt(tokenizer, prompt_format, question["turns"], answers[index])
            prompts.append(encode_prompt(tokenizer, prompt_format, text))
            temperatures.append(category_temperature(question["category"]))
            generator = torch.Generator(device=device)
            generators.append(generator.manual_seed(_seed_for(seed, question["question_id"], turn)))
        new_ids = decode_batch(model, prompts, temperatures=temperatures, generators=generators,
                               max_new_tokens=max_new_tokens, stop_ids=stop_ids,
                               pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
                               finished_when=fastchat.finished if fastchat else None)
        for index, ids in zip(rows, new_ids):
            stats["new_tokens"] += len(ids)
            answers[index].append(fastchat.text(ids) if fastchat else
                                  tokenizer.decode(ids, skip_special_tokens=True).strip())
    return answers


def _check_resume(meta_file: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """The saved settings of an answers file, refusing to continue it with different ones (one line)."""
    if not meta_file.is_file():
        return {**settings, "new_tokens": 0, "wall_s": 0.0}
    saved = read_json(meta_file)
    for key in RESUME_KEYS:
        if saved.get(key) != settings[key]:
            raise UserError(f"{meta_file.parent}: its answers were generated with {key}={saved.get(key)!r}, this "
                            f"run asks for {key}={settings[key]!r}; use another output folder or delete the "
                            f"answers to regenerate them")
    return saved


def meta_path(answer_file: str | Path) -> Path:
    """answers.jsonl → answers.meta.json: how the answers were generated (format, limits, seed, tokens, time)."""
    answer_file = Path(answer_file)
    return answer_file.with_name(answer_file.stem + ".meta.json")


def generate_answers(model: Any, tokenizer: Any, questions: list[dict[str, Any]], out_file: str | Path, *,
                     model_id: str, prompt_format: str, max_new_tokens: int = 1024, batch_size: int = 8,
                     seed: int = 0, limit: int | None = None, question_begin: int | None = None,
                     question_end: int | None = None, progress: bool = False) -> Path:
    """Answer both turns of `questions` (questions[question_begin:question_end], then the first `limit` of those
    round-robin over categories: questions.select_questions) into `out_file`, a FastChat model-answer JSONL;
    returns its path.

    Resumable: a question already in the file is skipped; each question's line is appended (and flushed) once
    both its turns are done, so a killed run loses at most the batch in flight. At the end the file is sorted by
    question_id (as FastChat's reorg_answer_file does). `max_new_tokens` bounds each turn's answer (tokens).
    """
    for name, value in (("max_new_tokens", max_new_tokens), ("batch_size", batch_size)):
        if value < 1:
            raise UserError(f"{name}: must be >= 1 (got {value})")
    check_prompt_format(prompt_format)
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    settings = {"model_id": model_id, "prompt_format": prompt_format, "max_new_tokens": max_new_tokens, "seed": seed}
    meta = {**_check_resume(meta_path(out_file), settings), "temperatures": TEMPERATURES,
            "default_temperature": DEFAULT_TEMPERATURE}
    rows = drop_torn_tail(out_file)
    strangers = sorted({str(row.get("model_id")) for row in rows} - {model_id})
    if strangers:
        raise UserError(f"{out_file}: holds answers of model {strangers[0]!r}, not {model_id!r}; one answers file "
                        f"per model (FastChat's layout); use another output folder")
    done = {row["question_id"] for row in rows}
    chosen = select_questions(questions, limit, question_begin, question_end)
    pending = [q for q in chosen if q["question_id"] not in done]
    pending.sort(key=lambda q: len(q["turns"][0]), reverse=True)  # similar lengths share a batch: less padding
    write_json_atomic(meta_path(out_file), meta)
    if not pending:
        return out_file
    was_training = model.training
    model.eval()
    stats = {"new_tokens": 0}
    batches = range(0, len(pending), batch_size)
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, desc=f"mt-bench answers ({model_id})", unit="batch")
    try:
        for start in batches:
            started, batch = time.perf_counter(), pending[start: start + batch_size]
            answers = _answer_turns(model, tokenizer, batch, prompt_format=prompt_format, seed=seed,
                                    max_new_tokens=max_new_tokens, stats=stats)
            with open(out_file, "a") as sink:
                for question, turns in zip(batch, answers):
                    sink.write(json.dumps(answer_record(question["question_id"], model_id, turns)) + "\n")
            meta["wall_s"] = meta["wall_s"] + time.perf_counter() - started
            meta["new_tokens"], stats["new_tokens"] = meta["new_tokens"] + stats["new_tokens"], 0
            write_json_atomic(meta_path(out_file), meta)
    finally:
        model.train(was_training)
    write_jsonl_atomic(out_file, sorted(read_jsonl(out_file), key=lambda row: row["question_id"]))
    return out_file


def answer_record(question_id: int, model_id: str, turns: list[str]) -> dict[str, Any]:
    """One line of FastChat's model-answer JSONL (the keys gen_model_answer.py writes, nothing else)."""
    return {"question_id": question_id, "answer_id": uuid.uuid4().hex[:22], "model_id": model_id,
            "choices": [{"index": 0, "turns": turns}], "tstamp": time.time()}
