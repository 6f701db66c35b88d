"""`owlore-bench memory --paper`: the OwLore paper's memory setting in one flag, with totals in GB beside GiB.

The paper (arXiv 2405.18380) fine-tunes LLaMA2-7B on batches of 16 sequences x 512 tokens in bf16 with gradient
checkpointing, and states memory in GB (10^9 bytes): 21 GB for OwLore. The estimate table is in GiB (2^30
bytes, 7.4 % more than a GB); the totals line this module prints gives both, so the claim is checked in one
command. Without checkpointing every decoder layer keeps its activations for backward, which is why
`--model llama2-7b` alone (batch 16 x 512, bf16, no checkpointing) estimates OwLore at ~52 GiB, not ~19 GiB.
"""

from __future__ import annotations

import argparse
from typing import Any

from owlore_bench.errors import UserError

GB = 10**9
GIB = 2**30
# The paper's setting, as this command's argument destinations (and the flag that sets each).
PAPER_SHAPE = {"model": ("--model", "llama2-7b"), "batch_size": ("--batch-size", 16), "seq_len": ("--seq-len", 512),
               "dtype": ("--dtype", "bf16"), "grad_checkpointing": ("--grad-checkpointing", True)}
PAPER_METHODS = "full_ft,lora,galore,lisa,owlore,owlore_fullrank"  # the paper's six, unless --methods says
PAPER_CLAIMS_GB = {"owlore": 21}  # LLaMA2-7B memory the paper states, GB


def add_paper_argument(parser: argparse.ArgumentParser) -> None:
    """--paper; call after the shape arguments exist: it keeps their defaults to tell a flag given by hand."""
    parser.add_argument("--paper", action="store_true",
                        help="the OwLore paper's setting: --model llama2-7b --batch-size 16 --seq-len 512 --dtype "
                             "bf16 --grad-checkpointing, the paper's six methods unless --methods; prints each "
                             "total in GB (10^9 bytes, as the paper states memory) beside GiB")
    parser.set_defaults(paper_shape_defaults={dest: parser.get_default(dest) for dest in PAPER_SHAPE})


def apply_paper_preset(args: argparse.Namespace) -> None:
    """With --paper: set the paper's shape (and methods, unless given); a shape flag given with another value is
    one error line. Under --levers checkpointing is left to the matrix (a column of its own)."""
    if not args.paper:
        return
    shape = {dest: spec for dest, spec in PAPER_SHAPE.items() if not (args.levers and dest == "grad_checkpointing")}
    clashes = [f"{flag} {getattr(args, dest)}" for dest, (flag, value) in shape.items()
               if getattr(args, dest) not in (value, args.paper_shape_defaults[dest])]
    if clashes:
        raise UserError(f"--paper sets the paper's shape itself; drop {', '.join(clashes)} (or leave out --paper "
                        f"and give every flag)")
    for dest, (_, value) in shape.items():
        setattr(args, dest, value)
    if args.methods is None:
        args.methods = PAPER_METHODS


def gb_totals_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One line per method: its estimated total in GiB and in GB, and the paper's figure where it states one."""
    lines = ["estimated total, GiB = 2^30 bytes and GB = 10^9 bytes (the paper's unit):"]
    for row in rows:
        total = row["est_total_bytes"]
        claim = PAPER_CLAIMS_GB.get(row["method"])
        lines.append(f"  {row['method']}: {total / GIB:.2f} GiB = {total / GB:.2f} GB"
                     + (f" (the paper: {claim} GB)" if claim is not None else ""))
    return lines
