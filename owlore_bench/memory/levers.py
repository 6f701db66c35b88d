"""The method × memory-lever matrix: every method's estimated step memory under each lever alone and under the
levers stacked one on top of another in torchtune's order (activation checkpointing, optimizer in backward,
activation offloading, 8-bit AdamW), all from the fake-tensor estimator (owlore_bench/memory/estimate.py).

A lever a method refuses (update_in_backward for LoRA, 8-bit states for a non-AdamW optimizer) is a cell with
the refusal's reason in its own column, and is left out of that method's stack, which names what it skipped.
Device bytes only: with offload_activations the host copies are `activations_offloaded`, not in `total`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from owlore_bench.errors import UserError
from owlore_bench.memory.estimate import estimate_memory

# lever name → the estimate_memory settings it turns on (one train.* field each)
LEVERS: dict[str, dict[str, Any]] = {
    "grad_checkpointing": {"grad_checkpointing": True},
    "update_in_backward": {"update_in_backward": True},
    "offload_activations": {"offload_activations": True},
    "optimizer_state_bits=8": {"optimizer_state_bits": 8},
}
STACK_ORDER = tuple(LEVERS)  # torchtune's memory table order: checkpointing, optimizer in backward, offload, 8-bit
SHORT = {"grad_checkpointing": "ckpt", "update_in_backward": "in_bwd", "offload_activations": "offload",
         "optimizer_state_bits=8": "8bit"}


def column_names() -> list[str]:
    """none, each lever alone, then the cumulative stack ("+ckpt+in_bwd", ...); the first stack column is the
    checkpointing column itself, so it is not repeated."""
    stack = ["+".join(SHORT[name] for name in STACK_ORDER[:end]) for end in range(2, len(STACK_ORDER) + 1)]
    return ["none", *LEVERS, *stack]


def column_levers(column: str) -> tuple[str, ...]:
    """The levers a column stands for (none: ())."""
    if column == "none":
        return ()
    if column in LEVERS:
        return (column,)
    by_short = {short: name for name, short in SHORT.items()}
    return tuple(by_short[part] for part in column.split("+"))


@dataclass
class Cell:
    """One estimate: the ledger (bytes) or the reason the method refuses a lever; `skipped`: stacked levers left
    out because the method refuses them alone."""

    ledger: dict[str, int] | None = None
    refused: str | None = None
    skipped: list[str] = field(default_factory=list)


def lever_matrix(architecture: Any, methods: dict[str, dict[str, Any]],
                 **shape: Any) -> dict[str, dict[str, Cell]]:
    """{method: {column: Cell}} for these methods (name → method config) on one architecture and step shape
    (estimate_memory's batch_size, seq_len, dtype, seed). Each distinct lever set is estimated once."""
    matrix: dict[str, dict[str, Cell]] = {}
    for method, config in methods.items():
        cache: dict[tuple[str, ...], Cell] = {}

        def cell(levers: tuple[str, ...], method=method, config=config, cache=cache) -> Cell:
            if levers not in cache:
                settings = {key: value for lever in levers for key, value in LEVERS[lever].items()}
                try:
                    cache[levers] = Cell(ledger=estimate_memory(architecture, method, config, **shape, **settings))
                except UserError as refusal:
                    if not levers:
                        raise  # the method cannot be estimated at all: not a lever's refusal
                    cache[levers] = Cell(refused=str(refusal))
            return cache[levers]

        row = {"none": cell(()), **{lever: cell((lever,)) for lever in LEVERS}}
        for column in column_names()[len(row):]:
            wanted = column_levers(column)
            skipped = [lever for lever in wanted if row[lever].refused]
            kept = tuple(lever for lever in wanted if lever not in skipped)
            row[column] = Cell(ledger=cell(kept).ledger, refused=cell(kept).refused, skipped=skipped)
        matrix[method] = row
    return matrix


def best_cell(row: dict[str, Cell]) -> tuple[str, Cell]:
    """The column with the smallest estimated device total of one method's row."""
    usable = [(column, cell) for column, cell in row.items() if cell.ledger is not None]
    return min(usable, key=lambda item: item[1].ledger["total"])


def matrix_records(matrix: dict[str, dict[str, Cell]]) -> list[dict[str, Any]]:
    """Long format for a CSV: one record per method and column, the ledger in bytes (empty when refused)."""
    records = []
    for method, row in matrix.items():
        for column, cell in row.items():
            records.append({"method": method, "levers": column, "skipped": ",".join(cell.skipped),
                            "refused": cell.refused or "",
                            **{f"est_{key}_bytes": value for key, value in (cell.ledger or {}).items()
                               if key != "trainable_params"}})
    return records
