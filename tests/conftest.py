"""Shared test fixtures: tiny data files, the shared benchmark data folder, a CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
# The product never assumes the project's benchmark folder (../shared/data beside the repository); the tests point
# OWLORE_BENCH_DATA at it themselves (subprocesses inherit it), and tests that need it skip where it is absent.
os.environ.setdefault("OWLORE_BENCH_DATA", str(REPO_ROOT.parent / "shared" / "data"))
SHARED_DATA = Path(os.environ["OWLORE_BENCH_DATA"])

# Eight short instruction records: a tiny model can memorise them in a few dozen steps.
TINY_RECORDS = [
    {"instruction": f"Say the word number {i}.", "input": "", "output": word}
    for i, word in enumerate(["apple", "river", "stone", "cloud", "maple", "tiger", "lemon", "piano"])
]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: tiny models gain nothing from more, and on a shared CPU OpenMP spin-waiting makes them
    many times slower. CLI subprocesses get the same through OMP_NUM_THREADS (run_cli)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def fresh_registry(monkeypatch):
    """The method registry as it is now, restored after the test: methods the test registers (or plugins it loads
    through entry points, read again on first use) are gone for the next one. The one place tests touch the
    registry's private state."""
    from owlore_bench import registry

    registry.available_methods()  # built-ins and installed plugins loaded before the snapshot
    monkeypatch.setattr(registry, "_METHODS", dict(registry._METHODS))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    return registry


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY_RECORDS))
    return path


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"benchmark data folder {SHARED_DATA} is absent (set OWLORE_BENCH_DATA to its location)")
    return SHARED_DATA


@pytest.fixture
def shared_commonsense(shared_data: Path) -> Path:
    """The LLM-Adapters commonsense folder of the benchmark data (skips when that folder is absent)."""
    folder = shared_data / "commonsense"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (set OWLORE_BENCH_DATA to the benchmark data folder)")
    return folder


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("OWLORE_BENCH_CACHE", str(cache))
    return cache


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `owlore-bench ARGS` in a subprocess (the real entry point, as a user would)."""
    return subprocess.run([sys.executable, "-m", "owlore_bench.cli", *args], capture_output=True, text=True,
                          cwd=cwd or REPO_ROOT, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
