"""`owlore-bench train` and `methods` as a user runs them: real subprocesses, one-line errors with exit code 2."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

TRAIN = ["train", "--model", "tiny-llama", "--steps", "2", "--batch-size", "2", "--max-length", "64",
         "--template", "plain"]


def test_train_writes_config_metrics_and_summary(tmp_path, tiny_data):
    out = tmp_path / "run"
    done = run_cli(*TRAIN, "--method", "lora", "--data", str(tiny_data), "--out", str(out), "--set", "method.r=4",
                   "--set", "train.warmup_steps=1")
    assert done.returncode == 0, done.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["method_config"]["r"] == 4 and config["train"]["warmup_steps"] == 1
    assert config["method_config"]["alpha"] == 16.0  # defaults are resolved into the saved config
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "lora" and summary["status"] == "ok" and summary["steps"] == 2
    assert {"final_loss", "trainable_params", "tokens_per_s", "wall_s"} <= set(summary)
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    assert (out / "model" / "adapter_config.json").is_file()
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))


def test_train_from_a_config_file_with_flag_overrides(tmp_path, tiny_data):
    config = tmp_path / "run.yaml"
    config.write_text(f"method: full_ft\nmodel: tiny-llama\ndata: {{path: {tiny_data}, template: plain}}\n"
                      f"train: {{steps: 3, batch_size: 2, max_length: 64}}\nsave_model: false\n")
    done = run_cli("train", "--config", str(config), "--steps", "1", "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 1


def test_methods_lists_every_method_with_config_defaults():
    done = run_cli("methods")
    assert done.returncode == 0
    assert "full_ft:" in done.stdout and "lora:" in done.stdout
    assert "r (default 8)" in done.stdout


@pytest.mark.parametrize("args,expected", [
    (["--method", "lorra"], "unknown method 'lorra'. Did you mean 'lora'?"),
    (["--method", "lora", "--model", "tiny-lama"], "unknown model 'tiny-lama'"),
    (["--method", "lora", "--model", "/no/such/folder"], "unknown model '/no/such/folder'"),
    (["--method", "lora", "--data", "/no/such/data.json"], "data file not found: /no/such/data.json"),
    (["--method", "lora", "--lr", "-1"], "train.lr: Input should be greater than 0 (got -1.0)"),
    (["--method", "lora", "--batch-size", "0"], "train.batch_size: Input should be greater than 0 (got 0)"),
    (["--method", "lora", "--set", "method.r=0"], "lora.r: Input should be greater than 0 (got 0)"),
    (["--method", "lora", "--set", "train.learning_rate=1"], "--set: unknown key 'train.learning_rate'"),
    (["--method", "lora", "--set", "nonsense"], "expected key=value"),
])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, tiny_data, args, expected):
    data = [] if "--data" in args else ["--data", str(tiny_data)]
    done = run_cli(*TRAIN, *data, *args, "--out", str(tmp_path / "run"))
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("owlore-bench")]
    assert len(lines) == 1 and expected in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_malformed_data_names_the_record(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"instruction": "a", "output": "b"}, {"instruction": "c", "output": ""}]))
    done = run_cli(*TRAIN, "--method", "full_ft", "--data", str(bad), "--out", str(tmp_path / "run"))
    assert done.returncode == 2
    assert f"{bad}: record 1 has no string 'output'" in done.stderr and "Traceback" not in done.stderr


def test_out_dir_with_a_different_config_is_refused_unless_forced(tmp_path, tiny_data):
    out = str(tmp_path / "run")
    assert run_cli(*TRAIN, "--method", "full_ft", "--data", str(tiny_data), "--out", out).returncode == 0
    refused = run_cli(*TRAIN, "--method", "full_ft", "--data", str(tiny_data), "--out", out, "--lr", "0.5")
    assert refused.returncode == 2 and "train.lr" in refused.stderr and "--force" in refused.stderr
    forced = run_cli(*TRAIN, "--method", "full_ft", "--data", str(tiny_data), "--out", out, "--lr", "0.5", "--force")
    assert forced.returncode == 0, forced.stderr


def test_fetch_rejects_an_unknown_asset_in_one_line():
    done = run_cli("fetch", "bigbnch")
    assert done.returncode == 2
    assert "unknown asset 'bigbnch'; Did you mean 'bigbench'?" in done.stderr and "Traceback" not in done.stderr
