"""Benchmark: training speed of methods against each other, alternated in one process.

Plain script (prints measured figures; not a pass/fail test). The Tokens/s column of a report compares units that
ran at different times, often on a machine shared with other jobs; a speed comparison between methods needs them
to share the machine's state. Here every method gets its own copy of the model and its own optimizer, and the
process alternates between them: each round runs `--steps` optimizer steps of every method in turn, the order
rotated from round to round so that no method always follows the same one. The k-th step of every method trains
on the same batch of random tokens (fixed length: the speed does not depend on the text). A step is the loop's
work without its bookkeeping: method.on_step_start, forward, backward, gradient clipping, optimizer step.

Printed per method: the median tokens/s over its timed steps (the first `--warmup-rounds` rounds left out) with
the 25-75 % range, and its speed relative to the first method: per round, the ratio of the two medians, then the
median and the range of those ratios over rounds (a drift of the machine moves both alike). The 1-minute load
average before and after, and the CPUs and torch threads, are printed with them.

  .venv/bin/python benchmarks/bench_speed_alternating.py --set lisa.gamma=2 --set owlore.gamma=2   # tiny-llama
  .venv/bin/python benchmarks/bench_speed_alternating.py --model smollm2-135m --rounds 6 --steps 2 --seq-len 128
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny-llama", help="tiny-llama (default) or smollm2-135m")
    parser.add_argument("--methods", default="full_ft,lora,galore,lisa,owlore",
                        help="registered methods, comma-separated; the first is the reference of the ratios")
    parser.add_argument("--rounds", type=int, default=6, help="rounds, each running every method (default 6)")
    parser.add_argument("--warmup-rounds", type=int, default=1, help="first rounds left out (default 1)")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps of a method per round (default 3)")
    parser.add_argument("--batch", type=int, default=4, help="rows per step (default 4)")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per row (default 128)")
    parser.add_argument("--set", action="append", default=[], metavar="METHOD.FIELD=VALUE",
                        help="a method config field, e.g. owlore.gamma=2 (tiny-llama has 4 layers); repeatable")
    parser.add_argument("--json", help="also write the per-step figures to this file")
    return parser.parse_args(argv)


def method_configs(settings: list[str]) -> dict[str, dict]:
    """{method: {field: value}} from --set METHOD.FIELD=VALUE (values read as YAML: 2, 0.5, true, text)."""
    import yaml

    configs: dict[str, dict] = {}
    for setting in settings:
        key, _, value = setting.partition("=")
        method, _, field = key.partition(".")
        if not (method and field and value):
            raise SystemExit(f"--set {setting}: expected METHOD.FIELD=VALUE, e.g. owlore.gamma=2")
        configs.setdefault(method, {})[field] = yaml.safe_load(value)
    return configs


def random_batches(vocab: int, count: int, rows: int, length: int) -> list[dict]:
    """`count` batches of random token ids (labels = inputs), the same for every method."""
    import torch

    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(count):
        ids = torch.randint(3, vocab, (rows, length), generator=generator)
        batches.append({"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()})
    return batches


class Contender:
    """One method's model, optimizer and step counter; `step` times one optimizer step (seconds)."""

    def __init__(self, name: str, model_name: str, config: dict | None = None):
        from owlore_bench.models import load_model
        from owlore_bench.registry import build_method

        self.name = name
        self.method = build_method(name, config or {})
        model, _ = load_model(model_name, dtype="fp32", device="cpu")
        self.model = self.method.prepare(model)
        self.model.train()
        self.optimizer = self.method.build_optimizer(self.model, lr=1e-5, weight_decay=0.0)
        self.params = [p for group in self.optimizer.param_groups for p in group["params"]]
        self.done = 0

    def step(self, batch: dict) -> float:
        import torch

        started = time.perf_counter()
        self.method.on_step_start(self.done, self.model, self.optimizer)
        loss = self.model(**batch).loss
        loss.backward()
        loss.item()  # sync point, as in the loop
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.done += 1
        return time.perf_counter() - started


def alternate(contenders: list[Contender], batches: list[dict], args: argparse.Namespace) -> dict[str, list]:
    """{method: [[step seconds of round r] for each timed round]}, the order rotated every round."""
    timed: dict[str, list] = {contender.name: [] for contender in contenders}
    for round_index in range(args.rounds):
        shift = round_index % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            seconds = [contender.step(batches[contender.done]) for _ in range(args.steps)]
            if round_index >= args.warmup_rounds:
                timed[contender.name].append(seconds)
    return timed


def report(timed: dict[str, list], tokens: int) -> list[str]:
    """The printed table: tokens/s (median, 25-75 %) and the per-round ratio to the first method."""
    reference = next(iter(timed))
    lines = ["| method | tokens/s (median) | 25-75 % | × first method (median of rounds) | range over rounds |",
             "|---|---:|---:|---:|---:|"]
    for name, rounds in timed.items():
        rates = sorted(tokens / s for seconds in rounds for s in seconds)
        quartiles = statistics.quantiles(rates, n=4) if len(rates) > 1 else [rates[0]] * 3
        ratios = [statistics.median(ref) / statistics.median(mine)  # seconds: theirs / mine = my speed / theirs
                  for mine, ref in zip(rounds, timed[reference])]
        lines.append(f"| {name} | {statistics.median(rates):,.0f} | {quartiles[0]:,.0f}-{quartiles[2]:,.0f} | "
                     f"{statistics.median(ratios):.2f} | {min(ratios):.2f}-{max(ratios):.2f} |")
    return lines


def main() -> None:
    import os

    import torch

    from owlore_bench.results import available_cpus, load_average

    args = parse_args()
    names = [name.strip() for name in args.methods.split(",") if name.strip()]
    if args.rounds <= args.warmup_rounds or args.steps < 1:
        raise SystemExit("--rounds must exceed --warmup-rounds, and --steps must be at least 1")
    load_before = load_average()
    configs = method_configs(args.set)
    contenders = [Contender(name, args.model, configs.get(name)) for name in names]
    vocab = contenders[0].model.config.vocab_size
    batches = random_batches(vocab, args.rounds * args.steps, args.batch, args.seq_len)
    timed = alternate(contenders, batches, args)
    load_after = load_average()
    print(f"[bench_speed_alternating] {args.model}, batch {args.batch} x {args.seq_len} tokens, fp32 CPU, "
          f"{torch.get_num_threads()} torch threads on {available_cpus()} CPUs (OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}); {args.rounds - args.warmup_rounds} timed rounds of "
          f"{args.steps} steps per method (+{args.warmup_rounds} warm-up), order rotated each round; 1-min load "
          f"average {load_before:.2f} before, {load_after:.2f} after")
    print("\n".join(report(timed, args.batch * args.seq_len)))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "step_s": timed, "load_before": load_before,
                                               "load_after": load_after, "cpus": available_cpus()}))


if __name__ == "__main__":
    main()
