"""Every registered method on fourteen architectures (tests/architectures.py): each trains a few steps with a finite
loss, or is refused in one line before training where the table below says so. The full method x architecture
matrix is slow; a diagonal that still reaches every method and every architecture (and each cell that failed before
issue 29) runs in the default suite. Also: the GaLore family's optimizer state is below AdamW's everywhere."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from architectures import ARCHITECTURES, one_step, saved_tiny_model
from conftest import TINY_RECORDS

from owlore_bench.config import RunConfig
from owlore_bench.errors import UserError
from owlore_bench.memory.ledger import optimizer_bytes
from owlore_bench.registry import available_methods
from owlore_bench.train.run import train_run

# Small settings that keep each cell to a few seconds (ranks <= 16: at width 64 a larger rank clamps to full rank).
# Outlier threshold M = 5: in a random 64-wide model no score reaches 13 x the mean (the ratios would all be 0).
OUTLIERS = {"calibration_samples": 2, "calibration_length": 32, "outlier_threshold": 5.0}
MATRIX_CONFIG: dict[str, dict] = {
    "lisa": {"gamma": 2, "interval": 2},
    "owlore": {"gamma": 2, "interval": 2, "rank": 8, **OUTLIERS},
    "owlore_fullrank": {"gamma": 2, "interval": 2, **OUTLIERS},
    "galore": {"rank": 8}, "galore_8bit": {"rank": 8}, "apollo": {"rank": 8},
    "badam": {"switch_every": 2}, "pissa": {"r": 4}, "dora": {"r": 4},
}
# (method, architecture) → a word of the one-line refusal. Every other cell must train.
REFUSED = {("adam_mini", "gpt2"): "Conv1D"}
# Each method once, each architecture at least once, and the cells issue 29 found failing or silently partial.
DIAGONAL = [
    ("full_ft", "granite"), ("lora", "phi3"), ("lora", "stablelm"), ("lora_plus", "opt"), ("dora", "gpt_neox"),
    ("pissa", "falcon"), ("rslora", "gpt2"), ("galore", "gpt2"), ("galore_8bit", "llama"), ("fira", "opt"),
    ("apollo", "gpt_neox"), ("apollo_mini", "falcon"), ("lisa", "qwen2"), ("owlore", "gpt2"),
    ("owlore_fullrank", "olmo2"), ("badam", "falcon"), ("badam", "gemma2"), ("adam_mini", "gemma3"),
    ("adam_mini", "gpt_neox"), ("adam_mini", "gpt2"), ("lomo", "mistral"), ("adalomo", "qwen3"),
]
GALORE_FAMILY = {"galore": {"rank": 16}, "galore_8bit": {"rank": 16}, "fira": {"rank": 16}, "apollo": {"rank": 16},
                 "apollo_mini": {}, "owlore": {"rank": 16, "gamma": 4, "sampling": "uniform"}}  # all 4 layers active


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """A folder of saved tiny checkpoints, one per architecture, built on first use."""
    return tmp_path_factory.mktemp("architectures")


def train_cell(method: str, architecture: str, models: Path, out: Path, steps: int = 3, **config) -> dict:
    """The user's path (train_run on a checkpoint folder), a few steps; returns summary.json."""
    data = out.parent / "tiny.json"
    data.write_text(json.dumps(TINY_RECORDS))
    run = RunConfig(method=method, method_config={**MATRIX_CONFIG.get(method, {}), **config},
                    model=str(saved_tiny_model(architecture, models / architecture)),
                    data={"path": str(data), "template": "plain"},
                    train={"steps": steps, "batch_size": 4, "max_length": 32, "lr": 1e-3, "progress": False,
                           "device": "cpu", "dtype": "fp32"})
    train_run(run, out)
    return json.loads((out / "summary.json").read_text())


def check_cell(method: str, architecture: str, models: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    if (method, architecture) in REFUSED:
        with pytest.raises(UserError) as refused:
            train_cell(method, architecture, models, out)
        assert REFUSED[(method, architecture)] in str(refused.value) and "\n" not in str(refused.value)
        assert not out.exists(), "a refusal comes before the run folder is written"
        return
    summary = train_cell(method, architecture, models, out)
    assert summary["status"] == "ok", summary["error"]
    assert summary["steps"] == 3 and math.isfinite(summary["final_loss"])


def test_the_diagonal_reaches_every_method_and_every_architecture():
    assert {method for method, _ in DIAGONAL} == set(available_methods())
    assert {architecture for _, architecture in DIAGONAL} == set(ARCHITECTURES)


@pytest.mark.parametrize("method, architecture", DIAGONAL)
def test_a_method_trains_or_is_refused_in_one_line(method, architecture, models, tmp_path):
    check_cell(method, architecture, models, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
@pytest.mark.parametrize("method", list(available_methods()))
def test_every_method_on_every_architecture(method, architecture, models, tmp_path):
    check_cell(method, architecture, models, tmp_path)


def state_after_one_step(method_name: str, architecture: str, config: dict) -> int:
    """Optimizer state bytes after one optimizer step of a fresh tiny model (the ledger's count)."""
    _, _, optimizer = one_step(method_name, architecture, **config)
    return optimizer_bytes(optimizer)


@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_galore_family_state_is_below_adamw_on_every_architecture(architecture):
    adamw = state_after_one_step("full_ft", architecture, {})
    for name, config in GALORE_FAMILY.items():
        state = state_after_one_step(name, architecture, config)
        assert state < adamw, f"{name} on {architecture}: {state} bytes of state, AdamW {adamw}"
