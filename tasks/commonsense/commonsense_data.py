"""lm-eval `!function` entry point of the commonsense tasks; the loader lives in owlore_bench.local_tasks."""

from owlore_bench.local_tasks import load_commonsense  # noqa: F401
