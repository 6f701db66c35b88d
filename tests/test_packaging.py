"""The project as a user installs it: a real wheel in a throwaway venv, the CLI run from a folder outside the
repository. (The package's import rules: test_architecture.py.)

The venv is made with --system-site-packages and the wheel installed with --no-deps, so torch & co. are not
reinstalled (seconds, not minutes). A venv made from inside a venv sees the *base* interpreter's site-packages,
not this environment's, so a .pth file adds this environment's site-packages after the venv's own: the wheel's
copy of owlore_bench comes first, and this environment's editable-install hook (a .pth of its own, which Python
does not process in a folder added this way) stays out.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest
import yaml
from conftest import REPO_ROOT, TINY_RECORDS

# source folder -> where its files land in the wheel (every file: a forgotten subpackage or data file fails)
PACKAGED_SOURCE_FOLDERS = {"owlore_bench": "owlore_bench", "methods": "owlore_bench/methods",
                           "tasks": "owlore_bench/tasks"}


def _run(command: list[str], cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    import os

    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    assert done.returncode == 0, f"{' '.join(map(str, command))}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(dist),
          str(REPO_ROOT)], cwd=dist)
    (built,) = dist.glob("owlore_bench-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel) -> Path:
    """A fresh venv holding only the wheel (plus this environment's packages behind it); returns its bin/."""
    root = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(root)], cwd=root)
    python = root / "bin" / "python"
    purelib = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        cwd=root).stdout.strip())
    parent = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (purelib / "_owlore_test_parent_env.pth").write_text("\n".join(sorted(parent)) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "--quiet",
          str(wheel)], cwd=root)
    return root / "bin"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A working folder outside the repository with a tiny training file."""
    (tmp_path / "tiny.json").write_text(json.dumps(TINY_RECORDS))
    return tmp_path


def test_the_wheel_ships_every_package_method_and_task_file_and_no_generic_top_level_name(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for source, packaged in PACKAGED_SOURCE_FOLDERS.items():
        files = [p for p in (REPO_ROOT / source).rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith((".pyc", ".tmp"))]
        assert files, source
        missing = [str(p.relative_to(REPO_ROOT)) for p in files
                   if f"{packaged}/{p.relative_to(REPO_ROOT / source).as_posix()}" not in names]
        assert not missing, f"not in the wheel: {missing}"
    assert any(name.startswith("owlore_bench/architectures/") for name in names)
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"owlore_bench"}, top_level


def test_the_installed_package_is_the_wheel_and_methods_is_not_importable(venv, outside):
    code = ("import owlore_bench, importlib.util; print(owlore_bench.__file__); "
            "print(importlib.util.find_spec('methods'))")
    location, methods_spec = _run([str(venv / "python"), "-c", code], cwd=outside).stdout.split()
    assert Path(location).is_relative_to(venv.parent), location
    assert methods_spec == "None"
    version = _run([str(venv / "owlore-bench"), "--version"], cwd=outside).stdout
    from owlore_bench import __version__

    assert version.strip() == f"owlore-bench {__version__}"


def test_train_eval_memory_outliers_run_work_from_outside_the_repository(venv, outside):
    # the embedded tasks need no data folder: point the data root at nothing
    cli, env = str(venv / "owlore-bench"), {"OWLORE_BENCH_DATA": str(outside / "no-data-here")}
    listed = _run([cli, "methods"], cwd=outside).stdout
    assert all(name in listed for name in ("full_ft", "lora", "galore", "lisa", "owlore"))
    _run([cli, "train", "--method", "lora", "--model", "tiny-llama", "--data", "tiny.json", "--template", "plain",
          "--steps", "2",
          "--batch_size", "4", "--max-length", "64", "--out", "trained"], cwd=outside)
    assert json.loads((outside / "trained" / "summary.json").read_text())["status"] == "ok"
    _run([cli, "eval", "--run", "trained", "--tasks", "arc_easy_choices", "--limit", "4", "--batch_size", "4",
          "--output_path", "eval.json"], cwd=outside, env=env)
    rows = json.loads((outside / "eval.json").read_text())["rows"]
    assert {row["task"] for row in rows} >= {"arc_easy_choices"} and all(row["n"] == 4 for row in rows if row["n"])
    _run([cli, "memory", "--model", "smollm2-135m", "--methods", "lora,owlore", "--batch-size", "1", "--seq-len", "16",
          "--out", "memory"], cwd=outside)
    assert (outside / "memory" / "memory.csv").is_file()
    _run([cli, "outliers", "--model", "tiny-llama", "--n", "2", "--seq-len", "16", "--out", "outliers"], cwd=outside)
    assert len(json.loads((outside / "outliers" / "outliers.json").read_text())["layers"]) == 4
    config = {"name": "wheel_sweep", "model": "tiny-llama", "data": {"path": "tiny.json", "template": "plain"},
              "train": {"steps": 2, "batch_size": 4, "max_length": 64, "progress": False},
              "methods": [{"name": "owlore", "config": {"gamma": 2, "interval": 1, "rank": 4}}],
              "eval": {"tasks": ["arc_easy_choices"], "limit": 4, "batch_size": 4}, "evaluate_base": False}
    (outside / "sweep.yaml").write_text(yaml.safe_dump(config))
    assert "1 runs" in _run([cli, "run", "sweep.yaml", "--dry-run"], cwd=outside).stdout
    _run([cli, "run", "sweep.yaml", "--no-plots"], cwd=outside, env=env)
    assert (outside / "runs" / "wheel_sweep" / "owlore" / "seed-0" / "eval.json").is_file()


def test_embedded_training_data_and_your_own_bigbench_work_from_the_wheel(venv, outside):
    checkout = outside / "BIG-bench" / "bigbench" / "benchmark_tasks" / "navigate"
    checkout.mkdir(parents=True)
    examples = [{"input": f"Step {k} forward. Back home?", "target_scores": {"Yes": k % 2, "No": 1 - k % 2}}
                for k in range(40)]
    (checkout / "task.json").write_text(json.dumps({"name": "navigate", "examples": examples}))
    env = {"OWLORE_BENCH_BIGBENCH": str(outside / "BIG-bench"), "OWLORE_BENCH_DATA": str(outside / "no-data-here")}
    _run([str(venv / "owlore-bench"), "eval", "--model", "tiny-llama", "--tasks", "bb_navigate", "--limit", "4",
          "--output_path", "bb.json"], cwd=outside, env=env)
    rows = json.loads((outside / "bb.json").read_text())["rows"]
    assert [row["n"] for row in rows if row["task"] == "bb_navigate" and row["metric"] == "acc"] == [4]
    _run([str(venv / "owlore-bench"), "train", "--method", "full_ft", "--model", "tiny-llama", "--data",
          "commonsense:openbookqa", "--steps", "1", "--batch-size", "2", "--max-length", "512", "--out", "cs"],
         cwd=outside, env=env)
    summary = json.loads((outside / "cs" / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["data_sources"][0]["source"] == "commonsense:openbookqa"


def test_a_third_party_method_registers_through_the_entry_point_group(venv, tmp_path):
    plugin = tmp_path / "plugin"
    (plugin / "owlore_head_only").mkdir(parents=True)
    (plugin / "owlore_head_only" / "__init__.py").write_text(textwrap.dedent('''
        from owlore_bench import Method, register_method

        @register_method("head_only")
        class HeadOnly(Method):
            """Train only the output head (a third-party plugin)."""
    '''))
    (plugin / "pyproject.toml").write_text(textwrap.dedent('''
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "owlore-head-only"
        version = "0.0.1"
        [project.entry-points."owlore_bench.methods"]
        head_only = "owlore_head_only"
    '''))
    _run([sys.executable, "-m", "pip", "--python", str(venv / "python"), "install", "--no-deps", "--no-index",
          "--no-build-isolation", "--quiet", str(plugin)], cwd=tmp_path)
    listed = _run([str(venv / "owlore-bench"), "methods"], cwd=tmp_path).stdout
    assert "head_only" in listed and "third-party plugin" in listed
