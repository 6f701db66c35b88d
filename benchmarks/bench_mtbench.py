"""MT-Bench answer generation: generate_answers against a bare `model.generate` loop on the same prompts, and
the speed-up from batching.

Both sides decode greedily here (every category's temperature is set to 0 for the run), so they produce the same
tokens and their times compare the decoding machinery alone: ours is a hand-written KV-cache loop with per-row
seeded sampling and EOS cut; the baseline is transformers' generate on the same left-padded batches (turn 1,
then turn 2 built from our turn-1 answers), in the same order. Prints wall times, tokens/s and their ratio
(issue target: ours <= 1.1x the bare time), then ours at batch 1 against batch B, and an extrapolation to all
80 questions. Measured figures, not a pass/fail test.

    .venv/bin/python benchmarks/bench_mtbench.py [--model smollm2-135m] [--limit 8] [--max-new-tokens 64]
                                                 [--batch-size 8] [--repeats 1]
    .venv/bin/python benchmarks/bench_mtbench.py --model tiny-llama          # a quick check (seconds)
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from owlore_bench.models import load_model
from owlore_bench.mtbench import generate
from owlore_bench.mtbench.questions import load_questions, select_questions


def ours_s(model, tokenizer, questions, prompt_format: str, max_new_tokens: int, batch_size: int) -> tuple[float, Path]:
    """Seconds for generate_answers into a fresh file, and that file."""
    out = Path(tempfile.mkdtemp(prefix="bench_mtbench_")) / "answers.jsonl"
    started = time.perf_counter()
    generate.generate_answers(model, tokenizer, questions, out, model_id="bench", prompt_format=prompt_format,
                              max_new_tokens=max_new_tokens, batch_size=batch_size)
    return time.perf_counter() - started, out


def bare_s(model, tokenizer, questions, answers: dict, prompt_format: str, max_new_tokens: int,
           batch_size: int) -> tuple[float, int]:
    """Seconds and new tokens (before EOS) for model.generate on the same batches and prompts as ours."""
    ordered = sorted(questions, key=lambda q: len(q["turns"][0]), reverse=True)  # generate_answers' order
    stop = sorted(generate.stop_token_ids(model, tokenizer))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    tokens, started = 0, time.perf_counter()
    for start in range(0, len(ordered), batch_size):
        batch = ordered[start: start + batch_size]
        for turn in (0, 1):
            prompts = [generate.encode_prompt(tokenizer, prompt_format, generate.conversation_prompt(
                tokenizer, prompt_format, q["turns"], answers[q["question_id"]][:turn])) for q in batch]
            width = max(map(len, prompts))
            ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
            with torch.no_grad():
                out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=max_new_tokens,
                                     eos_token_id=stop, pad_token_id=pad)
            for row in out[:, width:].tolist():
                cut = [k for k, token in enumerate(row) if token in stop]
                tokens += cut[0] if cut else len(row)
    return time.perf_counter() - started, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m", help="smollm2-135m (default) or tiny-llama, or any id")
    parser.add_argument("--limit", type=int, default=8, help="questions (round-robin over the categories)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="tokens per answer turn")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1, help="timed repeats of each side (median reported)")
    args = parser.parse_args()
    model, tokenizer = load_model(args.model, device="cpu")
    model.eval()
    prompt_format = generate.resolve_prompt_format(tokenizer)
    generate.TEMPERATURES.update(dict.fromkeys(generate.TEMPERATURES, 0.0))  # greedy: identical work on both sides
    generate.DEFAULT_TEMPERATURE = 0.0
    questions = select_questions(load_questions(), args.limit)
    ours_s(model, tokenizer, questions[:1], prompt_format, 4, 1)  # warm-up: kernels, allocator
    ours_times, bare_times = [], []
    for _ in range(args.repeats):
        seconds, answer_file = ours_s(model, tokenizer, questions, prompt_format, args.max_new_tokens, args.batch_size)
        ours_times.append(seconds)
        rows = [json.loads(line) for line in answer_file.read_text().splitlines()]
        answers = {row["question_id"]: row["choices"][0]["turns"] for row in rows}
        meta = json.loads(generate.meta_path(answer_file).read_text())
        seconds, bare_tokens = bare_s(model, tokenizer, questions, answers, prompt_format, args.max_new_tokens,
                                      args.batch_size)
        bare_times.append(seconds)
    ours, bare = statistics.median(ours_times), statistics.median(bare_times)
    single, _ = ours_s(model, tokenizer, questions, prompt_format, args.max_new_tokens, 1)
    print(f"model {args.model} ({prompt_format} prompts), {len(questions)} questions x 2 turns, max_new_tokens "
          f"{args.max_new_tokens}, batch {args.batch_size}, torch threads {torch.get_num_threads()}, greedy")
    print(f"generate_answers: {ours:.2f} s, {meta['new_tokens']} tokens, {meta['new_tokens'] / ours:.1f} tokens/s")
    print(f"bare generate:    {bare:.2f} s, {bare_tokens} tokens, {bare_tokens / bare:.1f} tokens/s")
    print(f"ratio ours/bare: {ours / bare:.2f}x  (target <= 1.1x)")
    print(f"batch 1: {single:.2f} s; batch {args.batch_size}: {ours:.2f} s; "
          f"speed-up from batching {single / ours:.2f}x")
    print(f"extrapolated to 80 questions x 2 turns at these settings: {ours * 80 / len(questions) / 60:.1f} min")


if __name__ == "__main__":
    main()
