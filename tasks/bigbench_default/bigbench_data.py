"""lm-eval `!function` entry point of the embedded BIG-bench tasks (loader: owlore_bench.datasets.bigbench)."""

from owlore_bench.datasets.bigbench import load_bigbench  # noqa: F401
