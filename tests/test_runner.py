"""`owlore-bench run`: a real sweep on tiny-llama — table math, kill + resume, divergence, bad configs."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO_ROOT, run_cli
from helpers import TASK, deterministic_columns, tiny_sweep_yaml

from owlore_bench.reporting.tables import build_table


def experiment(tmp_path: Path, data: Path, out: str, **changes) -> Path:
    """helpers.tiny_sweep_yaml with the base model scored, 6 steps of batch 4 and 8 questions."""
    return tiny_sweep_yaml(tmp_path, data, out, **{
        "name": "tiny_sweep",
        "train": {"steps": 6, "batch_size": 4, "max_length": 64, "lr": 3e-3, "checkpoint_every": 2, "progress": False},
        "eval": {"tasks": [TASK], "limit": 8, "batch_size": 8},
        "evaluate_base": True,
        **changes})


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    from conftest import TINY_RECORDS

    tmp = tmp_path_factory.mktemp("sweep")
    data = tmp / "tiny.json"
    data.write_text(json.dumps(TINY_RECORDS))
    config = experiment(tmp, data, "straight")
    done = run_cli("run", str(config), "--no-plots")
    assert done.returncode == 0, done.stderr[-2000:]
    return tmp, data, config, done


def test_sweep_table_has_base_then_methods_and_mean_std_from_the_seed_files(finished_sweep):
    tmp, _, _, done = finished_sweep
    out = tmp / "straight"
    table = build_table([out])
    assert list(table[("label", "")]) == ["base", "full_ft", "lora"]
    for label in ("full_ft", "lora"):
        values = []
        for seed in (0, 1):
            rows = json.loads((out / label / f"seed-{seed}" / "eval.json").read_text())["rows"]
            values += [100 * r["value"] for r in rows if r["task"] == TASK and r["metric"] == "acc"]
        assert len(values) == 2
        row = table[table[("label", "")] == label].iloc[0]
        mean, std = sum(values) / 2, math.sqrt(sum((v - sum(values) / 2) ** 2 for v in values))
        assert row[(TASK, "mean")] == pytest.approx(mean)
        assert row[(TASK, "std")] == pytest.approx(std, abs=1e-9)
        assert row[(TASK, "n")] == 2
    assert (out / "table.md").is_file() and "full_ft" in done.stdout
    summary = json.loads((out / "lora" / "seed-1" / "summary.json").read_text())
    assert summary["label"] == "lora" and summary["status"] == "ok" and summary["seed"] == 1
    assert not (out / "lora" / "seed-1" / "checkpoint").exists()


def test_a_sweep_killed_mid_run_and_rerun_gives_the_same_table(finished_sweep):
    tmp, data, _, _ = finished_sweep
    config = experiment(tmp, data, "killed")
    process = subprocess.Popen([sys.executable, "-m", "owlore_bench.cli", "run", str(config), "--no-plots"],
                               cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = tmp / "killed" / "lora" / "seed-0" / "metrics.jsonl"  # mid-sweep, mid-training of the 4th unit
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        if target.is_file() and len(target.read_text().splitlines()) >= 3:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the sweep ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp / "killed" / "lora" / "seed-0" / "summary.json").exists()
    done = run_cli("run", str(config), "--no-plots")
    assert done.returncode == 0, done.stderr[-2000:]
    straight, resumed = build_table([tmp / "straight"]), build_table([tmp / "killed"])
    assert deterministic_columns(resumed).equals(deterministic_columns(straight))


def test_a_diverging_run_is_recorded_and_the_sweep_finishes(finished_sweep):
    tmp, data, _, _ = finished_sweep
    methods = [{"name": "full_ft"}, {"name": "exploding", "method": "full_ft", "train": {"lr": 1e12, "grad_clip": 0}}]
    config = experiment(tmp, data, "diverging", methods=methods, seeds=[0], evaluate_base=False)
    done = run_cli("run", str(config), "--no-plots")
    assert done.returncode == 1  # not every run is ok: said, not hidden
    assert "exploding seed 0: diverged" in done.stdout
    table = build_table([tmp / "diverging"])
    statuses = dict(zip(table[("label", "")], table[("status", "")]))
    assert statuses == {"full_ft": "ok", "exploding": "diverged"}
    assert (tmp / "diverging" / "full_ft" / "seed-0" / "eval.json").is_file()


def test_only_runs_one_unit(finished_sweep):
    tmp, data, _, _ = finished_sweep
    config = experiment(tmp, data, "only")
    done = run_cli("run", str(config), "--only", "method=lora,seed=1", "--no-plots")
    assert done.returncode == 0, done.stderr[-2000:]
    finished = sorted(str(p.parent.relative_to(tmp / "only")) for p in (tmp / "only").glob("*/seed-*/summary.json"))
    assert finished == ["lora/seed-1"]


def test_dry_run_prints_the_plan_with_memory_estimates(tmp_path, tiny_data):
    config = experiment(tmp_path, tiny_data, "dry")
    done = run_cli("run", str(config), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "5 runs" in done.stdout and "est." in done.stdout and "GiB" in done.stdout
    assert not (tmp_path / "dry").exists()


@pytest.mark.parametrize("change,expected", [
    ({"optimizer": "sgd"}, "optimizer: unknown key"),
    ({"methods": [{"name": "galorre"}]}, "unknown method 'galorre'"),
    ({"seeds": [0, "one"]}, "seeds.1: Input should be a valid integer"),
    ({"seeds": [1.5]}, "seeds.0: Input should be a valid integer"),
    ({"eval": {"tasks": ["arc_easy_choicez"]}}, "unknown task 'arc_easy_choicez'"),
    ({"methods": [{"name": "lora", "config": {"r": -1}}]}, "lora.r: Input should be greater than 0"),
])
def test_bad_experiment_configs_fail_in_one_line_before_training(tmp_path, tiny_data, change, expected):
    config = experiment(tmp_path, tiny_data, "bad", **change)
    done = run_cli("run", str(config))
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], done.stderr
    assert not (tmp_path / "bad").exists()


def test_an_out_dir_of_a_different_experiment_is_refused_naming_the_fields(finished_sweep, tmp_path):
    tmp, data, _, _ = finished_sweep
    changed = experiment(tmp_path, data, "other", train={"steps": 7, "batch_size": 4, "max_length": 64, "lr": 3e-3,
                                                           "checkpoint_every": 2, "progress": False})
    values = yaml.safe_load(changed.read_text())
    values["out"] = str(tmp / "straight")
    changed.write_text(yaml.safe_dump(values))
    done = run_cli("run", str(changed))
    assert done.returncode == 2 and "train.steps" in done.stderr and "--force" in done.stderr
