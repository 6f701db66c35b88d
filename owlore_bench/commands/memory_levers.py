"""`owlore-bench memory --levers`: the method x memory-lever matrix of estimated device totals
(owlore_bench/memory/levers.py builds it; this prints and writes it: levers.md, levers.csv in bytes), and the
GiB / MiB choice both memory tables display in (display_unit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from owlore_bench.errors import UserError

GIB, MIB = 2**30, 2**20


def display_unit(rows: list[dict[str, Any]]) -> tuple[str, int]:
    """GiB when the largest estimated total reaches 1 GiB, else MiB."""
    largest = max(row["est_total_bytes"] for row in rows)
    return ("GiB", GIB) if largest >= GIB else ("MiB", MIB)


def print_levers(args, names: list[str], configs: dict[str, dict[str, Any]], out: Path | None) -> int:
    """`--levers`: the method x lever matrix of estimated device totals (GiB), refusals and each method's best."""
    import pandas as pd

    from owlore_bench.memory.levers import best_cell, lever_matrix, matrix_records

    if args.measure or args.grad_checkpointing or args.update_in_backward or args.offload_activations \
            or args.optimizer_state_bits != 32 or args.steps is not None:
        raise UserError("--levers: the matrix sets every lever itself and shows step 0; drop --measure, "
                        "--grad-checkpointing, --update-in-backward, --offload-activations, --optimizer-state-bits "
                        "and --steps")
    shape = dict(batch_size=args.batch_size, seq_len=args.seq_len, dtype=args.dtype, seed=args.seed)
    matrix = lever_matrix(args.model, {name: configs[name] for name in names}, **shape)
    unit = display_unit([{"est_total_bytes": row["none"].ledger["total"]} for row in matrix.values()])
    table = pd.DataFrame([{"method": method, **{column: _lever_cell(cell, unit) for column, cell in row.items()}}
                          for method, row in matrix.items()])
    title = (f"{args.model}, batch {args.batch_size} x seq {args.seq_len}, {args.dtype}; estimated device total "
             f"{unit[0]} "
             f"per lever alone, then stacked (ckpt = grad_checkpointing, in_bwd = update_in_backward, "
             f"offload = offload_activations, 8bit = optimizer_state_bits=8)")
    notes = _lever_notes(matrix, best_cell, unit)
    print(title)
    print(table.to_string(index=False))
    print("\n".join(notes))
    if out:
        out.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(matrix_records(matrix)).to_csv(out / "levers.csv", index=False)  # bytes
        (out / "levers.md").write_text(f"{title}\n\n{table.to_markdown(index=False)}\n\n" + "\n".join(
            f"- {note}" for note in notes) + "\n")
        print(f"wrote {out / 'levers.csv'}, levers.md")
    return 0


def _lever_cell(cell, unit: tuple[str, int]) -> str:
    """The total with 2 decimals; '*' when the stack skipped a lever the method refuses; 'n/a' for a refusal."""
    if cell.ledger is None:
        return "n/a"
    return f"{cell.ledger['total'] / unit[1]:.2f}" + ("*" if cell.skipped else "")


def _lever_notes(matrix, best_cell, unit: tuple[str, int]) -> list[str]:
    """One line per refused lever (n/a; a '*' stack skipped it), then each method's smallest total."""
    notes = []
    for method, row in matrix.items():
        notes += [f"{method} {column}: n/a, {cell.refused}" for column, cell in row.items()
                  if cell.refused and "+" not in column]
    for method, row in matrix.items():
        column, cell = best_cell(row)
        notes.append(f"{method}: smallest {cell.ledger['total'] / unit[1]:.2f} {unit[0]} with {column}"
                     + (f" (without {', '.join(cell.skipped)})" if cell.skipped else ""))
    return notes
