"""Experiment trackers for `train.report_to` (the HF Trainer's names and meaning): every metrics.jsonl row also
goes to TensorBoard, Weights & Biases or MLflow. Each package is optional and imported only when asked for.

A tracker receives exactly the rows the loop writes to metrics.jsonl (numbers only: loss, lr, tokens/s,
memory ledger in bytes...), keyed by the optimizer step.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from owlore_bench.errors import UserError

# report_to name -> (module that must be importable, the pip install that brings it)
TRACKERS = {
    "tensorboard": ("tensorboard", "pip install tensorboard"),
    "wandb": ("wandb", "pip install wandb"),
    "mlflow": ("mlflow", "pip install mlflow"),
}


def check_available(names: list[str]) -> None:
    """One line naming the pip install for the first asked-for tracker whose package is missing."""
    for name in names:
        module, install = TRACKERS[name]
        if importlib.util.find_spec(module) is None:
            raise UserError(f"train.report_to: '{name}' needs the {module} package, which is not installed; "
                            f"run `{install}` (or `pip install 'owlore-bench[{name}]'`), or remove it from report_to")


def numeric(row: dict[str, Any]) -> dict[str, float]:
    """The plottable part of a metrics row: finite-or-not numbers, bools and lists left out."""
    return {key: float(value) for key, value in row.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "step"}


class TensorBoardTracker:
    """Scalars under <out>/tensorboard (one event file per process), tag = the metrics.jsonl key."""

    def __init__(self, out_dir: Path, run_name: str, config: dict[str, Any]):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(out_dir / "tensorboard"))
        self.writer.add_text("config", f"```\n{json.dumps(config, indent=2)}\n```")

    def log(self, row: dict[str, Any], step: int) -> None:
        for key, value in numeric(row).items():
            self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.close()


class WandbTracker:
    """One W&B run per training run; project from $WANDB_PROJECT (default owlore-bench), files under <out>."""

    def __init__(self, out_dir: Path, run_name: str, config: dict[str, Any]):
        import wandb

        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "owlore-bench"), name=run_name, config=config,
                              dir=str(out_dir), reinit=True)

    def log(self, row: dict[str, Any], step: int) -> None:
        self.run.log(numeric(row), step=step)

    def close(self) -> None:
        self.run.finish()


class MlflowTracker:
    """One MLflow run per training run (tracking URI from $MLFLOW_TRACKING_URI, as mlflow itself reads it)."""

    def __init__(self, out_dir: Path, run_name: str, config: dict[str, Any]):
        import mlflow

        self.mlflow = mlflow
        self.run = mlflow.start_run(run_name=run_name)
        flat = {f"{section}.{key}": value for section, values in config.items() if isinstance(values, dict)
                for key, value in values.items()}
        mlflow.log_params({key: str(value)[:250] for key, value in flat.items()})

    def log(self, row: dict[str, Any], step: int) -> None:
        self.mlflow.log_metrics(numeric(row), step=step)

    def close(self) -> None:
        self.mlflow.end_run()


_CLASSES = {"tensorboard": TensorBoardTracker, "wandb": WandbTracker, "mlflow": MlflowTracker}


def open_trackers(names: list[str], out_dir: Path) -> list[Any]:
    """A started tracker per name; the run is named after its folder and carries its config.json."""
    if not names:
        return []
    check_available(names)
    config_file = out_dir / "config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    run_name = "/".join(out_dir.resolve().parts[-3:])
    return [_CLASSES[name](out_dir, run_name, config) for name in names]
