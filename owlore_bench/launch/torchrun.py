"""`--nproc N`: the same command again under torchrun, as N data-parallel processes on this machine.

`owlore-bench train ... --nproc 2` runs
`python -m owlore_bench.launch.torchrun --standalone --nproc_per_node 2 -m owlore_bench.cli train ...` (the same
arguments without --nproc): torchrun's own launcher (torch.distributed.run) inside a small supervisor, so
`--nproc N` and a hand-written torchrun line run the same ranks. Each rank then joins the process group in
owlore_bench/train/distributed.py (nccl on CUDA, gloo on CPU).

Why the supervisor: bad input is found before the ranks start (the commands validate first), but a few errors
can only show in the ranks (e.g. a model too short for data.block_size). Raw torchrun would print that line once
per rank, then its elastic traceback and SIGTERM notices (some 40 lines). Under the supervisor each rank writes
its one-line error to a file instead of printing it, torchrun's notices are quiet, and the supervisor prints the
distinct lines once and exits 2, as the command without --nproc does. A rank that crashes (not a UserError)
prints its own traceback; the supervisor adds one line naming the rank and its exit code, and exits 1.
"""

from __future__ import annotations

import os
import subprocess
import sys

from owlore_bench.errors import UserError
from owlore_bench.train.distributed import launched_by_torchrun

NPROC_FLAG = "--nproc"
RANK_ERRORS_ENV = "OWLORE_BENCH_RANK_ERRORS"  # the folder where each rank writes its one-line error (supervise)


def add_nproc_argument(parser) -> None:
    parser.add_argument(NPROC_FLAG, type=int, metavar="N",
                        help="data-parallel processes on this machine: starts torchrun (one GPU per process on "
                             "CUDA, gloo processes on CPU); each process takes train.batch_size rows of every "
                             "global batch of batch_size x N rows")


def add_parallel_argument(parser) -> None:
    parser.add_argument("--parallel", choices=["replicate", "fsdp"],
                        help="with --nproc N (or torchrun): replicate = every process holds the whole model "
                             "(default); fsdp = FSDP2 shards weights, gradients and optimizer state over the "
                             "processes (train.parallel)")


def check_nproc(nproc: int, device: str) -> None:
    """One line for a process count this machine cannot run: below 1, more GPUs than it has, more processes
    than CPU cores (on CPU), or --nproc inside a torchrun that already started the processes."""
    if nproc < 1:
        raise UserError(f"--nproc: {nproc} is not a process count; use 1 or more, e.g. --nproc 2")
    if launched_by_torchrun():
        raise UserError(f"--nproc: this command already runs under torchrun (WORLD_SIZE="
                        f"{os.environ.get('WORLD_SIZE')}); drop --nproc, torchrun's --nproc_per_node sets it")
    import torch

    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        gpus = torch.cuda.device_count()
        if nproc > gpus:
            raise UserError(f"--nproc: {nproc} processes need one GPU each; this machine has {gpus}")
        return
    cpus = os.cpu_count() or 1
    if nproc > cpus:
        raise UserError(f"--nproc: {nproc} processes on CPU is more than this machine's {cpus} cores; "
                        f"use --nproc {cpus} or fewer")


def without_nproc(argv: list[str]) -> list[str]:
    """`argv` minus `--nproc N` / `--nproc=N` (or an unambiguous abbreviation argparse accepted, e.g. --np 2)."""
    kept, skip_value = [], False
    for token in argv:
        if skip_value:
            skip_value = False
            continue
        name, has_value, _ = token.partition("=")
        if len(name) >= 3 and NPROC_FLAG.startswith(name):
            skip_value = not has_value
            continue
        kept.append(token)
    return kept


def torchrun_command(nproc: int, argv: list[str]) -> list[str]:
    """The torchrun line that runs `owlore-bench ARGV` (minus --nproc) as `nproc` local processes."""
    return [sys.executable, "-m", "owlore_bench.launch.torchrun", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "owlore_bench.cli", *without_nproc(argv)]


def report_rank_error(message: str) -> bool:
    """Inside a rank the supervisor started: write this rank's one-line error where the supervisor reads it and
    return True (the caller prints nothing). Anywhere else: False (the caller prints as usual)."""
    folder = os.environ.get(RANK_ERRORS_ENV)
    if not folder or not launched_by_torchrun() or not os.path.isdir(folder):
        return False
    with open(os.path.join(folder, f"rank{os.environ.get('RANK', '0')}.txt"), "w") as file:
        file.write(message)
    return True


def supervise(torchrun_args: list[str]) -> int:
    """Run torchrun (torch.distributed.run) with `torchrun_args` in this process; 0 when every rank succeeded,
    2 with each distinct rank error printed once, 1 (and the failed rank named) when a rank crashed."""
    import logging
    import shutil
    import tempfile

    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    folder = tempfile.mkdtemp(prefix="owlore-rank-errors-")
    os.environ[RANK_ERRORS_ENV] = folder
    for name in list(logging.root.manager.loggerDict):  # torchrun's SIGTERM notices and failure reports
        if name.startswith("torch.distributed.elastic"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        torchrun.run(torchrun.parse_args(torchrun_args))
        return 0
    except ChildFailedError as failed:
        messages = [open(os.path.join(folder, name)).read() for name in sorted(os.listdir(folder))]
        for message in dict.fromkeys(messages):
            print(f"owlore-bench: error: {message}", file=sys.stderr)
        if messages:
            return 2
        rank, failure = failed.get_first_failure()
        print(f"owlore-bench: rank {rank} failed (exit code {failure.exitcode}); its traceback is above",
              file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def relaunch(nproc: int, argv: list[str]) -> int:
    """Run the command under torchrun and wait; returns torchrun's exit code (0 when every rank succeeded).

    OMP_NUM_THREADS, when unset, becomes cores / nproc so the processes do not oversubscribe the CPU (torchrun
    would set 1 and say so).
    """
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return subprocess.call(torchrun_command(nproc, argv), env=env)


if __name__ == "__main__":  # `python -m owlore_bench.launch.torchrun TORCHRUN-ARGS`: what relaunch starts
    sys.exit(supervise(sys.argv[1:]))
