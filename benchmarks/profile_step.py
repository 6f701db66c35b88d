"""torch.profiler over N training steps of one method at one size: where a step's CPU time goes.

Runs the suite's method through owlore_bench.train.loop.train (or the official-style one from official_owlore.py) on
the same packed batches as bench_vs_reference.py, profiles the steps after the warm-up (from the start of the
iteration, layer switch included, to the end of the run) and prints torch's key_averages table. The profiler
adds its own cost per op: compare step times with bench_vs_reference.py, not with the figures printed here.

    .venv/bin/python benchmarks/profile_step.py --method owlore --size 8x256 --steps 3
    .venv/bin/python benchmarks/profile_step.py --method owlore --size 2x64 --implementation official
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch
from bench_vs_reference import (
    HelpFormatter,
    add_setting_arguments,
    data_for,
    implementations,
    parse_size,
    positive_int,
    prepare_inputs,
    run_official_side,
    run_suite,
    settings_for,
)
from official_owlore import OFFICIAL_METHODS

from owlore_bench.errors import UserError

IMPLEMENTATIONS = ("suite", "official", "suite_in_backward")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    add_setting_arguments(parser)
    parser.add_argument("--method", choices=OFFICIAL_METHODS, default="owlore")
    parser.add_argument("--implementation", choices=IMPLEMENTATIONS, default="suite",
                        help="suite_in_backward: the suite with train.update_in_backward (no clipping)")
    parser.add_argument("--size", type=parse_size, default=(8, 256), help="BATCHxTOKENS")
    parser.add_argument("--steps", type=positive_int, default=3, help="profiled steps")
    parser.add_argument("--warmup", type=int, default=1, help="unprofiled steps before them")
    parser.add_argument("--sort", default="self_cpu_time_total", help="key_averages column to sort by")
    parser.add_argument("--row-limit", type=positive_int, default=25, help="rows of the table")
    parser.add_argument("--trace", default=None, help="also write a Chrome trace (chrome://tracing, Perfetto) here")
    args = parser.parse_args(argv)
    args.methods, args.update_in_backward = [args.method], args.implementation == "suite_in_backward"
    return args


def profile(args: argparse.Namespace) -> tuple[torch.profiler.profile, list[dict]]:
    """(the stopped profiler, the run's step rows) for warm-up + profiled steps of the chosen implementation."""
    if args.warmup < 0:
        raise UserError(f"--warmup: {args.warmup} must be >= 0 steps")
    torch.set_num_threads(args.threads)
    impl = next(i for i in implementations(args.grad_clip, True) if i.label == args.implementation)
    settings = settings_for(args.method, args, impl.grad_clip)
    profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])

    def start_after_warmup(step: int) -> None:
        if step == args.warmup:
            profiler.start()

    total = args.warmup + args.steps
    with tempfile.TemporaryDirectory(prefix="owlore-profile-") as folder:
        inputs = prepare_inputs(args, Path(folder), needed_tokens=total * args.size[0] * args.size[1])
        data, _ = data_for(args, inputs, args.size)
        if impl.side == "suite":
            status, rows = run_suite(args, args.method, impl, settings, args.size, total, data, inputs["ratios_file"],
                                     on_iteration=start_after_warmup)
        else:
            status, rows = run_official_side(args, args.method, settings, args.size, total, data, inputs["ratios"],
                                             on_iteration=start_after_warmup)
    profiler.stop()
    if status != "ok":
        raise UserError(f"the profiled run ended with status {status}")
    return profiler, rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        profiler, rows = profile(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    profiled = [row["step_s"] for row in rows[args.warmup:]]
    print(f"{args.method} ({args.implementation}), {args.size[0]}x{args.size[1]} tokens, {args.model} fp32, "
          f"{torch.get_num_threads()} thread(s), {args.tokens} tokens; {len(profiled)} profiled step(s) after "
          f"{args.warmup} warm-up; median step under the profiler {statistics.median(profiled):.3f} s")
    print(profiler.key_averages().table(sort_by=args.sort, row_limit=args.row_limit))
    if args.trace:
        profiler.export_chrome_trace(args.trace)
        print(f"Chrome trace: {args.trace}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
