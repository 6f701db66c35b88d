"""The "Forgetting (ΔCE)" column: how much worse a trained model predicts held-out general text than the base
model, from each run's `forgetting.json` ({"base_ce", "trained_ce", "delta_ce", "ci95": [lo, hi], "tokens",
"text"}; mean per-token cross-entropy in nats, delta = trained - base, so + is forgetting).

Cells: one seed → its delta and the 95 % interval stored with it; several seeds → mean ± sample std over seeds
(the per-seed intervals stay in each run's file). No column when no run has the file.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from owlore_bench.reporting.loading import Results, Run, _read

FORGETTING = "forgetting_delta_ce"  # column key in the numbers table
FILE = "forgetting.json"


def run_forgetting(run: Run) -> dict[str, Any] | None:
    path = run.path / FILE
    return _read(path) if run.status == "ok" and path.is_file() else None


def add_forgetting(table: pd.DataFrame, results: Results) -> bool:
    """Add (FORGETTING, mean|std|n|ci_low|ci_high) and (forgetting_base_ce / forgetting_trained_ce, mean) to
    `table` in place when any run has forgetting.json; returns whether it did."""
    found = {name: [f for f in map(run_forgetting, results.rows[name]) if f is not None] for name in table.index}
    if not any(found.values()):
        return False
    columns: dict[tuple[str, str], list[float]] = {}
    for name in table.index:
        files = found[name]
        deltas = pd.Series([float(f["delta_ce"]) for f in files], dtype=float)
        single = files[0].get("ci95") if len(files) == 1 else None
        values = {(FORGETTING, "mean"): deltas.mean() if len(files) else math.nan,
                  (FORGETTING, "std"): deltas.std(ddof=1) if len(files) > 1 else math.nan,
                  (FORGETTING, "n"): len(files),
                  (FORGETTING, "ci_low"): float(single[0]) if single else math.nan,
                  (FORGETTING, "ci_high"): float(single[1]) if single else math.nan,
                  ("forgetting_base_ce", "mean"): _mean(files, "base_ce"),
                  ("forgetting_trained_ce", "mean"): _mean(files, "trained_ce"),
                  ("forgetting_tokens", "mean"): _mean(files, "tokens")}
        for key, value in values.items():
            columns.setdefault(key, []).append(value)
    for key, values in columns.items():
        table[key] = values
    return True


def _mean(files: list[dict[str, Any]], key: str) -> float:
    values = [float(f[key]) for f in files if f.get(key) is not None]
    return sum(values) / len(values) if values else math.nan


def forgetting_cell(row: pd.Series) -> str:
    """'+0.031 [+0.020, +0.042]' (one seed), '+0.031 ± 0.004 (3)' (seeds), '+0.000' where the stored interval has
    no width (the base model against itself: nothing to resample), '—' without a file."""
    mean, n = row[(FORGETTING, "mean")], int(row[(FORGETTING, "n")])
    if n == 0 or math.isnan(mean):
        return "—"
    low, high = row[(FORGETTING, "ci_low")], row[(FORGETTING, "ci_high")]
    if n == 1 and not math.isnan(low) and low != high:  # the base model against itself: [0, 0], no interval
        return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]"
    std = row[(FORGETTING, "std")]
    return f"{mean:+.3f}" + ("" if math.isnan(std) else f" ± {std:.3f} ({n})")
