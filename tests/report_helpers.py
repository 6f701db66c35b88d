"""Synthetic result folders for the report tests (test_report_*.py): written from explicit per-seed numbers in the
results-store schema, so that every expected figure is computed from those numbers, never typed in."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import numpy as np
from scipy import stats

from owlore_bench.reporting.loading import GIB

REPO_ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TASKS = ("boolq", "arc_easy")

# label → seed → (boolq acc, arc_easy acc, arc_easy acc_norm, peak total bytes, tokens/s); base has no memory
SEEDS = {
    "base": {0: (0.50, 0.40, 0.45, None, None)},
    "full_ft": {1: (0.70, 0.60, 0.64, 3 * GIB, 900.0), 2: (0.72, 0.62, 0.66, 3.2 * GIB, 1000.0)},
    "lora": {1: (0.66, 0.58, 0.69, 1.5 * GIB, 1500.0), 2: (0.64, 0.55, 0.69, 1.6 * GIB, 1400.0)},
    "owlore": {1: (0.74, 0.61, 0.62, 1.2 * GIB, 1200.0), 2: (0.73, 0.65, 0.60, 1.1 * GIB, 1300.0)},
}
TRAINABLE = {"base": 0, "full_ft": 134_515_008, "lora": 4_884_480, "owlore": 9_000_000}
OUTLIER_RATIOS = [1.5, 4.0, 2.5, 0.5]
MEMORY_SHARES = {"weights": 0.4, "gradients": 0.2, "optimizer": 0.3, "activations": 0.1}  # of the peak total


STEPS = 4


def loss_at(step: int, seed: int) -> float:
    return 2.0 / (step + 1) + 0.01 * seed


def active_at(step: int, seed: int) -> list[int]:
    """owlore's logged active layers (2 of 4) at `step` of seed `seed`."""
    return [step % 4, (step + seed) % 4]


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def write_run(experiment_dir: Path, label: str, seed: int, numbers, status: str = "ok", method: str | None = None,
              shots: int = 0) -> Path:
    """One run folder in the results-store schema, from explicit numbers."""
    boolq, arc, arc_norm, peak, tokens_per_s = numbers
    run_dir = experiment_dir / label / f"seed-{seed}"
    method = method or label
    summary = {"method": method, "label": label, "model": "tiny-llama", "status": status, "error": None,
               "steps": 4, "final_loss": 1.0, "trainable_params": TRAINABLE.get(label, 1000),
               "tokens_per_s": tokens_per_s, "wall_s": 1.0, "method_info": {}}
    if peak is not None:
        summary |= {f"peak_mem_{k}_bytes": int(share * peak) for k, share in MEMORY_SHARES.items()}
        summary["peak_mem_total_bytes"] = int(peak)
    if method == "owlore":
        total = sum(OUTLIER_RATIOS)
        summary["method_info"] = {"outlier_ratios": OUTLIER_RATIOS,
                                  "layer_probabilities": [r / total for r in OUTLIER_RATIOS]}
    write_json(run_dir / "summary.json", summary)
    if method != "base":
        metrics = [{"step": step, "loss": loss_at(step, seed), "lr": 1e-4, "tokens": 100,
                    **({"active_layers": active_at(step, seed)} if method == "owlore" else {})}
                   for step in range(STEPS)]
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in metrics))
    if status == "ok":
        rows = [{"task": "boolq", "metric": "acc", "value": boolq, "stderr": 0.01, "n": 100, "num_fewshot": shots},
                {"task": "arc_easy", "metric": "acc", "value": arc, "stderr": 0.01, "n": 100, "num_fewshot": shots},
                {"task": "arc_easy", "metric": "acc_norm", "value": arc_norm, "stderr": 0.01, "n": 100,
                 "num_fewshot": shots},
                {"task": "commonsense_avg", "metric": "acc", "value": (boolq + arc) / 2, "stderr": None,
                 "n": 200, "num_fewshot": shots}]
        write_json(run_dir / "eval.json", {"rows": rows})
    return run_dir


def write_experiment(root: Path, name: str = "exp", seeds=SEEDS, methods=("owlore", "lora")) -> Path:
    experiment_dir = root / name
    write_json(experiment_dir / "experiment.json", {"name": name, "model": "tiny-llama", "eval": {"tasks": list(TASKS)},
                                                 "methods": [{"name": m, "method": m} for m in methods]})
    for label, per_seed in seeds.items():
        for seed, numbers in per_seed.items():
            write_run(experiment_dir, label, seed, numbers)
    return experiment_dir


def expected(label: str, column: int, percent: bool = True) -> tuple[float, float, int]:
    """mean, sample std, n over the seeds of one label for one position of the SEEDS tuples."""
    values = [numbers[column] * (100 if percent else 1) for numbers in SEEDS[label].values()]
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else math.nan, len(values)


def write_eval(experiment_dir: Path, label: str, seed: int, scores: dict[str, float],
               groups: dict[str, list[str]] | None = None) -> None:
    """A finished run whose eval.json holds one acc row per task; `groups`: group row → its member tasks."""
    run_dir = write_run(experiment_dir, label, seed, SEEDS["full_ft"][1], method=label)
    rows = [{"task": task, "metric": "acc", "value": value, "stderr": None, "n": 10, "num_fewshot": 5,
             **({"members": (groups or {})[task]} if task in (groups or {}) else {})}
            for task, value in scores.items()]
    write_json(run_dir / "eval.json", {"rows": rows})



# ---------------------------------------------------------------- per-question outcomes, MT-Bench judgments
def vector(correct: int, n: int = 100, offset: int = 0) -> list[int]:
    """0/1 outcomes of n questions: questions offset .. offset + correct - 1 (mod n) right."""
    return [1 if (i - offset) % n < correct else 0 for i in range(n)]


# label → seed → (boolq outcomes, arc_easy outcomes); owlore's boolq right answers include lora's (14 discordant
# questions, all owlore's: McNemar p = 2 * 0.5**14), full_ft's arc_easy includes lora's (2 discordant: p = 0.5)
OUTCOMES = {"base": {0: (vector(50), vector(40))}, "full_ft": {0: (vector(60), vector(60))},
            "lora": {0: (vector(66), vector(58))}, "owlore": {0: (vector(80), vector(57, offset=3))}}


def write_outcomes(root: Path, outcomes=OUTCOMES, name: str = "paired", peaks: dict[str, float] | None = None) -> Path:
    """An experiment whose runs keep per-question outcomes (samples/) agreeing with their eval.json; peak memory
    2 GiB a row (base none) unless `peaks` (bytes by label) says otherwise."""
    from owlore_bench.evaluation.samples import write_samples

    directory = root / name
    write_json(directory / "experiment.json", {"name": name, "eval": {"tasks": list(TASKS)},
                                           "methods": [{"name": "owlore"}, {"name": "lora"}]})
    for label, seeds in outcomes.items():
        for seed, (boolq, arc) in seeds.items():
            peak = None if label == "base" else (peaks or {}).get(label, 2 * GIB)
            run_dir = write_run(directory, label, seed, (np.mean(boolq), np.mean(arc), np.mean(arc), peak, 10.0))
            write_samples(run_dir, {"boolq": [{"i": i, "t": 1, "p": x, "acc": x} for i, x in enumerate(boolq)],
                                    "arc_easy": [{"i": i, "t": 1, "p": x, "acc": x, "acc_norm": x}
                                                 for i, x in enumerate(arc)]})
    return directory


def wilson_half(outcomes: list[int]) -> float:
    low, high = scipy_wilson(outcomes)
    return (high - low) / 2


def scipy_wilson(outcomes: list[int]) -> tuple[float, float]:
    interval = stats.binomtest(sum(outcomes), len(outcomes)).proportion_ci(0.95, method="wilson")
    return 100 * interval.low, 100 * interval.high


def write_judgments(run_dir: Path, scores: dict[tuple[int, int], int], slug: str = "hf-judge") -> None:
    rows = [{"question_id": q, "model": "m", "turn": turn, "score": score} for (q, turn), score in scores.items()]
    path = run_dir / "mt_bench" / "judgments" / f"{slug}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
