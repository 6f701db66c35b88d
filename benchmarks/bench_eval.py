"""Evaluation overhead: evaluate_model (lm-eval) against the bare forward passes the same scoring needs.

For N documents per task, lm-eval runs one forward pass per (document, choice) sequence. The bare baseline
tokenizes those sequences (prompt + delimiter + choice) itself, sorts them longest first and runs them in
right-padded batches of the same size, with no mask (as lm-eval's HFLM does for causal models): pure model
time. Prints both wall times and their ratio (issue target: <= 1.3x). Measured figures, not a pass/fail test.

    .venv/bin/python benchmarks/bench_eval.py [--model smollm2-135m] [--tasks arc_easy_choices,bb_navigate]
                                              [--limit 50] [--batch-size 16] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

os.environ.setdefault("TQDM_DISABLE", "1")  # progress bars cost time on a busy terminal; measure the work

from owlore_bench.evaluation.harness import evaluate_model, task_manager  # noqa: E402
from owlore_bench.models import load_model  # noqa: E402


def scored_sequences(tasks: list[str], limit: int, tokenizer) -> list[list[int]]:
    """Token ids of every (context + continuation) lm-eval scores for the first `limit` docs of each task."""
    sequences = []
    for task in tasks:
        built = task_manager(False).load([task])["tasks"][task]
        for index, doc in enumerate(built.test_docs()):
            if index == limit:
                break
            context = built.doc_to_text(doc)
            for choice in built.doc_to_choice(doc):
                ids = tokenizer(context + built.config.target_delimiter + choice, add_special_tokens=False)
                sequences.append(ids["input_ids"][:-1])  # the last token is predicted, never fed
    return sequences


def bare_forward_s(model, sequences: list[list[int]], batch_size: int, pad_id: int) -> float:
    """Seconds for the forward passes alone: longest-first, right-padded batches, no grad."""
    ordered = sorted(sequences, key=len, reverse=True)
    started = time.perf_counter()
    with torch.no_grad():
        for start in range(0, len(ordered), batch_size):
            batch = ordered[start: start + batch_size]
            width = len(batch[0])
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            for row, sequence in enumerate(batch):
                ids[row, : len(sequence)] = torch.tensor(sequence)
            model(ids).logits.log_softmax(-1)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tasks", default="arc_easy_choices,bb_navigate")
    parser.add_argument("--limit", type=int, default=50, help="documents per task")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats of each side (median reported)")
    args = parser.parse_args()
    tasks = args.tasks.split(",")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model, tokenizer = load_model(args.model, device="cpu")
    model.eval()
    sequences = scored_sequences(tasks, args.limit, tokenizer)
    evaluate_model(model, tokenizer, tasks, limit=2, batch_size=args.batch_size)  # warm-up: task index, kernels
    eval_times, bare_times = [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        evaluate_model(model, tokenizer, tasks, limit=args.limit, batch_size=args.batch_size)
        eval_times.append(time.perf_counter() - started)
        bare_times.append(bare_forward_s(model, sequences, args.batch_size, tokenizer.pad_token_id))
    evaluation, bare = statistics.median(eval_times), statistics.median(bare_times)
    tokens = sum(len(s) for s in sequences)
    print(f"model {args.model}, tasks {args.tasks}, {args.limit} docs/task, {len(sequences)} sequences, "
          f"{tokens} tokens, batch {args.batch_size}, torch threads {torch.get_num_threads()}")
    print(f"evaluate_model: {evaluation:.2f} s  (runs {', '.join(f'{t:.2f}' for t in eval_times)})")
    print(f"bare forward:   {bare:.2f} s  (runs {', '.join(f'{t:.2f}' for t in bare_times)})")
    print(f"ratio evaluate/bare: {evaluation / bare:.2f}x  (target <= 1.3x)")


if __name__ == "__main__":
    main()
