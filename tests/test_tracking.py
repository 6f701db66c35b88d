"""train.report_to: TensorBoard event files hold exactly the metrics.jsonl scalars; missing packages and unknown
names fail in one line before anything loads."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from owlore_bench.config import TrainConfig, parse
from owlore_bench.errors import UserError
from owlore_bench.train import tracking


def test_tensorboard_event_files_hold_the_metrics_of_every_step(tmp_path, tiny_data):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    done = run_cli("train", "--method", "lisa", "--model", "tiny-llama", "--data", str(tiny_data), "--template",
                   "plain", "--steps", "4", "--batch-size", "4", "--max-length", "64",
                   "--set", "train.report_to=[tensorboard]", "--set", "method.gamma=1", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    for key in ("loss", "lr", "mem_total_bytes", "trainable_params"):
        logged = [(event.step, event.value) for event in events.Scalars(key)]
        assert logged == [(row["step"], pytest.approx(float(row[key]), rel=1e-6)) for row in rows], key
    assert "active_layers" not in events.Tags()["scalars"]  # lists are not scalars


@pytest.mark.parametrize("value,expected", [("none", []), ("tensorboard", ["tensorboard"]),
                                            (["wandb", "mlflow"], ["wandb", "mlflow"])])
def test_report_to_takes_the_hf_trainer_spellings(value, expected):
    assert TrainConfig(report_to=value).report_to == expected


def test_an_unknown_tracker_is_one_line_listing_the_known_ones():
    with pytest.raises(UserError) as error:
        parse(TrainConfig, {"report_to": ["tensorbored"]}, prefix="train")
    message = str(error.value)
    assert "train.report_to.0" in message and all(name in message for name in tracking.TRACKERS)
    assert "\n" not in message


def test_a_missing_tracker_package_names_the_pip_install(monkeypatch, tmp_path, tiny_data):
    real_find_spec = tracking.importlib.util.find_spec
    monkeypatch.setattr(tracking.importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlflow" else real_find_spec(name, *a))
    with pytest.raises(UserError, match=r"'mlflow' needs the mlflow package.*`pip install mlflow`"):
        tracking.check_available(["tensorboard", "mlflow"])
    tracking.check_available(["tensorboard"])  # installed: no error


def test_cli_fails_before_training_when_a_tracker_is_not_installed(tmp_path, tiny_data):
    if tracking.importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    done = run_cli("train", "--method", "full_ft", "--model", "tiny-llama", "--data", str(tiny_data),
                   "--set", "train.report_to=wandb", "--out", str(tmp_path / "run"))
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and "pip install wandb" in lines[0]
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
