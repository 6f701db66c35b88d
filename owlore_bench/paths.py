"""Where things live: the benchmark data root and the folders shipped inside the package.

A leaf module (imports nothing from the project), so data loading, local tasks and MT-Bench can all use it
without import circles.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "OWLORE_BENCH_DATA"
PACKAGE_DIR = Path(__file__).resolve().parent
SOURCE_ROOT = PACKAGE_DIR.parent  # the repository root in a source checkout; site-packages in a wheel install


def data_root() -> Path:
    """The folder holding commonsense/, mmlu/, alpaca/ and mt_bench/ (may not exist; loaders say so in one line).

    $OWLORE_BENCH_DATA, else `../shared/data` beside the repository (a source checkout), else `./data`.
    """
    configured = os.environ.get(DATA_ENV)
    if configured:
        return Path(configured)
    if (SOURCE_ROOT / "pyproject.toml").is_file():
        return SOURCE_ROOT.parent / "shared" / "data"
    return Path("data")


def tasks_dir() -> Path:
    """The lm-eval task YAMLs (sources: the top-level tasks/ folder; installed as owlore_bench/tasks)."""
    from owlore_bench import tasks

    return Path(tasks.__file__).parent
