"""The Tokens/s column: each unit's median tokens/s over its steady-state steps, and whether it ran on a
contended machine.

The rate is read from metrics.jsonl (results.steady_tokens_per_s: the first 10 % of steps left out), so runs
made before the summary stored that median are shown by the same rule; a run without per-step rates falls back
to summary.json's tokens_per_s. A unit is contended when the median 1-minute load average over its steady steps
was at least its CPU count + CONTENDED_MARGIN: more runnable threads than cores, so its threads waited for a
core and its speed says more about the machine than about the method. Units that did not record their load
(made before load_1m was logged) are 'unknown'. Only rows whose every unit is known to be uncontended can be
bold. Speed comparisons between methods belong to benchmarks/bench_speed_alternating.py, which alternates
methods in one process so that they share the machine's state.
"""

from __future__ import annotations

import statistics

from owlore_bench.reporting.loading import Run
from owlore_bench.results import steady_rows, steady_tokens_per_s

CONTENDED_MARGIN = 0.5  # runnable threads beyond the cores: a lone run that keeps every core busy is at ~cpus


def unit_tokens_per_s(run: Run) -> float | None:
    """Median tokens/s of the unit's steady-state steps (summary.json's tokens_per_s when no step logged one)."""
    rate = steady_tokens_per_s(run.metrics) if (run.path / "metrics.jsonl").is_file() else None
    return rate if rate is not None else run.summary.get("tokens_per_s")


def unit_load(run: Run) -> tuple[float | None, int | None]:
    """(median 1-minute load average over the steady steps, CPUs): summary.json's, else from metrics.jsonl's
    load_1m; None where the unit did not record it."""
    load = run.summary.get("load_avg_1m")
    if load is None and (run.path / "metrics.jsonl").is_file():
        loads = [row["load_1m"] for row in steady_rows([r for r in run.metrics if "tokens_per_s" in r])
                 if row.get("load_1m") is not None]
        load = statistics.median(loads) if loads else None
    cpus = run.summary.get("cpu_count") or (run.summary.get("hardware") or {}).get("cpu_count")
    return load, cpus


def unit_contended(run: Run) -> bool | None:
    """True when the unit's load reached its CPUs + CONTENDED_MARGIN; None when it recorded no load."""
    load, cpus = unit_load(run)
    if load is None or not cpus:
        return None
    return load >= cpus + CONTENDED_MARGIN


def row_contention(runs: list[Run]) -> str:
    """'contended' when any ok unit was, 'unknown' when any ok unit recorded no load, else 'uncontended'."""
    flags = [unit_contended(run) for run in runs if run.status == "ok"]
    if any(flag is True for flag in flags):
        return "contended"
    return "unknown" if not flags or any(flag is None for flag in flags) else "uncontended"
