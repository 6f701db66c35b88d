"""Tokens/s in the report: each unit's median over its steady-state steps (results.steady_tokens_per_s), the
machine's load each unit recorded, and contended units flagged and never bold (reporting/throughput.py)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from report_helpers import SEEDS, write_run

from owlore_bench.reporting.loading import load_results
from owlore_bench.reporting.provenance import run_provenance
from owlore_bench.reporting.render import display_frame, render_markdown
from owlore_bench.reporting.tables import build_table
from owlore_bench.results import machine_load, steady_rows, steady_tokens_per_s


def test_steady_state_leaves_out_the_first_tenth_of_the_steps():
    rows = [{"step": k, "tokens_per_s": rate, "load_1m": 1.0 + k} for k, rate in
            enumerate([10, 100, 100, 90, 110, 100, 100, 100, 100, 100, 20, 130])]  # 12 steps: skip ceil(1.2) = 2
    assert [row["step"] for row in steady_rows(rows)] == list(range(2, 12))
    assert steady_tokens_per_s(rows) == statistics.median([100, 90, 110, 100, 100, 100, 100, 100, 20, 130])
    assert steady_tokens_per_s(rows[:1]) == 10  # one step: nothing to leave out
    assert steady_tokens_per_s([]) is None
    load = machine_load(rows)
    assert load["load_avg_1m"] == statistics.median(1.0 + k for k in range(2, 12)) and load["load_avg_1m_max"] == 12
    assert machine_load([{"step": 0, "tokens_per_s": 5}])["load_avg_1m"] is None


def write_timed_run(directory: Path, label: str, seed: int, rates: list[float], load: float | None,
                    cpus: int = 2) -> None:
    """A run whose metrics.jsonl has these per-step rates (and, unless None, this load every step)."""
    run_dir = write_run(directory, label, seed, SEEDS["full_ft"][1])
    rows = [{"step": k, "loss": 1.0, "tokens": 100, "tokens_per_s": rate,
             **({"load_1m": load} if load is not None else {})} for k, rate in enumerate(rates)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["hardware"] = {"cpu_count": cpus}
    (run_dir / "summary.json").write_text(json.dumps(summary))


def test_a_contended_unit_is_flagged_and_never_bold(tmp_path):
    directory = tmp_path / "speed"
    write_timed_run(directory, "full_ft", 0, [5, 100, 110, 120, 100], load=2.1)  # 2 CPUs, ~2 busy: uncontended
    write_timed_run(directory, "lora", 0, [5, 300, 310, 290, 305], load=4.0)  # another job ran beside it
    table = build_table([directory])
    assert table.loc["full_ft", ("tokens_per_s", "mean")] == statistics.median([100, 110, 120, 100])  # 5 steps: skip 1
    assert list(table[("contention", "")]) == ["uncontended", "contended"]
    frame = display_frame(table).set_index("Method")
    assert frame.loc["lora", "Tokens/s"] == "302†"  # the fastest, but on a busy machine: flagged, not bold
    assert not any(frame["Tokens/s"].str.startswith("**"))  # and no row is bold while one was contended
    assert "† = a seed ran on a contended machine" in render_markdown(table)
    provenance = run_provenance(load_results([directory])).set_index("row")
    assert bool(provenance.loc["lora", "contended"]) and not bool(provenance.loc["full_ft", "contended"])
    assert provenance.loc["full_ft", "load_avg_1m"] == pytest.approx(2.1)


def test_only_uncontended_rows_make_a_bold_speed(tmp_path):
    directory = tmp_path / "quiet"
    write_timed_run(directory, "full_ft", 0, [5, 100, 110, 120, 100], load=1.9)
    write_timed_run(directory, "lora", 0, [5, 300, 310, 290, 305], load=2.2)
    frame = display_frame(build_table([directory])).set_index("Method")
    assert frame.loc["lora", "Tokens/s"] == "**302**" and frame.loc["full_ft", "Tokens/s"] == "105"
    unknown = tmp_path / "old"  # runs made before load_1m was logged: the contention is unknown, nothing is bold
    write_timed_run(unknown, "full_ft", 0, [5, 100, 110, 120, 100], load=None)
    write_timed_run(unknown, "lora", 0, [5, 300, 310, 290, 305], load=None)
    table = build_table([unknown])
    assert set(table[("contention", "")]) == {"unknown"}
    assert not any(display_frame(table)["Tokens/s"].str.startswith("**"))
