"""Where things live: the benchmark data root and the folders shipped inside the package.

A leaf module (imports nothing from the project), so data loading, local tasks and MT-Bench can all use it
without import circles.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "OWLORE_BENCH_DATA"
BIGBENCH_ENV = "OWLORE_BENCH_BIGBENCH"  # your BIG-bench checkout or sdist (owlore_bench/datasets/bigbench.py)
PACKAGE_DIR = Path(__file__).resolve().parent


def data_root() -> Path:
    """The folder of the user's own local benchmark data: mmlu/, gsm8k/, alpaca/, mt_bench/, commonsense/ tasks
    beyond the embedded six (it may not exist; loaders say so in one line, naming OWLORE_BENCH_DATA).

    $OWLORE_BENCH_DATA, else `./data` in the working directory. The embedded default tasks never need it.
    """
    return Path(os.environ.get(DATA_ENV) or "data")


def tasks_dir() -> Path:
    """The lm-eval task YAMLs (sources: the top-level tasks/ folder; installed as owlore_bench/tasks)."""
    from owlore_bench import tasks

    return Path(tasks.__file__).parent
