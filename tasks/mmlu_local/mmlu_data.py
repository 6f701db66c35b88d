"""lm-eval `!function` entry point of the local MMLU tasks; the loader lives in owlore_bench.evaluation.local_tasks."""

from owlore_bench.evaluation.local_tasks import load_mmlu  # noqa: F401
