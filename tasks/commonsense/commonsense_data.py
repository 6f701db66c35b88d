"""lm-eval `!function` entry point of the commonsense tasks; the loader lives in owlore_bench.evaluation.local_tasks."""

from owlore_bench.evaluation.local_tasks import load_commonsense  # noqa: F401
