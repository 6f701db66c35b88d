"""How long `owlore-bench report` takes on a paper-size results store (it re-runs nothing, so this is all of it).

Builds a synthetic store in a temp folder: base + 5 methods × 3 seeds, 8 commonsense tasks (+ their average),
BENCH_REPORT_STEPS metrics lines per run, 30 layers of outlier ratios and active layers for owlore and lisa.
Prints the median wall time of loading + the numbers table, of rendering the three table formats, and of the
plots.

    .venv/bin/python -m pytest benchmarks/bench_report.py -s
    BENCH_REPORT_STEPS=5000 .venv/bin/python -m pytest benchmarks/bench_report.py -s
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time
from pathlib import Path

from owlore_bench.reporting.loading import load_results
from owlore_bench.reporting.plots import write_plots
from owlore_bench.reporting.render import write_tables
from owlore_bench.reporting.tables import table_from_results

STEPS = int(os.environ.get("BENCH_REPORT_STEPS", "1000"))
REPEATS = 3
LAYERS = 30
TASKS = ("boolq", "piqa", "social_iqa", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "openbookqa")
METHODS = ("full_ft", "lora", "galore", "lisa", "owlore")


def _run(folder: Path, method: str, seed: int, rng: random.Random) -> None:
    folder.mkdir(parents=True)
    sampled = method in ("lisa", "owlore")
    lines = [{"step": step, "loss": 2.0 / (1 + step / 100) + rng.random() * 0.1, "lr": 1e-4, "tokens": 4096,
              **({"active_layers": rng.sample(range(LAYERS), 2)} if sampled else {})} for step in range(STEPS)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    ratios = [rng.uniform(0.5, 5.0) for _ in range(LAYERS)]
    summary = {"method": method, "label": method, "status": "ok", "trainable_params": 10**6, "tokens_per_s": 1e3,
               "peak_mem_weights_bytes": 2**30, "peak_mem_gradients_bytes": 2**29, "peak_mem_optimizer_bytes": 2**30,
               "peak_mem_activations_bytes": 2**28, "peak_mem_total_bytes": 3 * 2**30,
               "method_info": {"outliers": {"outlier_ratio_percent": ratios},
                               "layer_probabilities": [r / sum(ratios) for r in ratios]} if sampled else {}}
    (folder / "summary.json").write_text(json.dumps(summary))
    rows = [{"task": task, "metric": metric, "value": rng.random(), "stderr": 0.01, "n": 1000, "num_fewshot": 0}
            for task in TASKS for metric in ("acc", "acc_norm")]
    (folder / "eval.json").write_text(json.dumps({"rows": rows}))


def build_store(root: Path) -> Path:
    rng = random.Random(0)
    experiment = root / "paper_size"
    experiment.mkdir()
    (experiment / "experiment.json").write_text(json.dumps({"name": "paper_size", "eval": {"tasks": list(TASKS)},
                                                            "methods": [{"name": m} for m in METHODS]}))
    _run(experiment / "base" / "seed-0", "base", 0, rng)
    for method in METHODS:
        for seed in (1, 2, 3):
            _run(experiment / method / f"seed-{seed}", method, seed, rng)
    return experiment


def _median_s(action) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def test_report_wall_time(tmp_path: Path):
    experiment = build_store(tmp_path)
    out = tmp_path / "report"
    results = load_results([experiment])
    table = table_from_results(results)
    load_s = _median_s(lambda: table_from_results(load_results([experiment])))
    tables_s = _median_s(lambda: write_tables(table, out))
    plots_s = _median_s(lambda: write_plots(load_results([experiment]), table, out))
    runs = sum(len(runs) for runs in results.rows.values())
    print(f"\nreport on {runs} runs × {STEPS} steps, {len(TASKS)} tasks: load + numbers table {load_s:.3f} s, "
          f"table.md/csv/tex {tables_s:.3f} s, plots ({len(list(out.glob('*.png')))} PNGs) {plots_s:.2f} s "
          f"(median of {REPEATS})")
    assert list(table.index)[:2] == ["base", "full_ft"]
